import WebSocket from "ws";

/** What a refused upgrade answered: its status and JSON body. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`upgrade refused: ${status} ${JSON.stringify(body)}`);
  }
}

type Frame = { type: string; [k: string]: unknown };

/**
 * A WebSocket test client: keeps every frame it is sent, in order, and lets a test wait for
 * the next one matching a predicate, or for the close (code and reason).
 */
export class WsClient {
  readonly frames: Frame[] = [];
  /** Frames that came as binary (every frame of ours is text). */
  binaryFrames = 0;
  private cursor = 0;
  private readonly waiters = new Set<() => void>();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaryFrames++;
      this.frames.push(JSON.parse(data.toString("utf8")) as Frame);
      for (const w of this.waiters) w();
    });
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens a connection; a refused upgrade rejects with {@link UpgradeRefused}. */
  static open(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const client = new WsClient(ws);
      ws.once("open", () => resolve(client));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: kept as text, for the assertion to show.
          }
          reject(new UpgradeRefused(res.statusCode ?? 0, body));
        });
      });
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame (after the ones already taken) that matches, waiting up to `timeoutMs`. */
  next<T extends Frame = Frame>(match: (f: Frame) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const look = () => {
        while (this.cursor < this.frames.length) {
          const f = this.frames[this.cursor++]!;
          if (match(f)) {
            done();
            resolve(f as T);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${timeoutMs} ms; frames so far: ${JSON.stringify(this.frames.map((f) => f.type))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(look);
      };
      this.waiters.add(look);
      look();
    });
  }

  /** Every event frame received so far. */
  events<T extends Frame = Frame>(): T[] {
    return this.frames.filter((f) => f.type === "event") as T[];
  }

  close(): void {
    this.ws.close();
  }
}
