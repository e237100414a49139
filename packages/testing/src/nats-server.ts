import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { freePort } from "./processes.ts";
import { testEnv } from "./config.ts";

const BINARY = testEnv.NATS_SERVER_BIN;

export interface PrivateNatsOptions {
  /** A configuration file (e.g. the shipped infra/nats/nats.conf); port, host and store directory are still ours. */
  config?: string;
  /** Environment of the server: what the configuration's `$VARIABLES` read (passwords). */
  env?: Record<string, string>;
}

/** A nats-server of the test's own (own port, own store directory) that it may kill -9 and restart. */
export class PrivateNatsServer {
  readonly storeDir = mkdtempSync(join(tmpdir(), "nats-store-"));
  port = 0;
  private child?: ChildProcess;
  private log = "";

  constructor(private readonly o: PrivateNatsOptions = {}) {}

  /** What the server logged (with a configuration: permission violations among it). */
  get output(): string {
    return this.log;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Starts the server: on its port after a kill, else on a free one, found again (a few times)
   * when another process takes it before the server binds it.
   */
  async start(): Promise<void> {
    if (this.port) return this.startOnce();
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        return await this.startOnce();
      } catch (err) {
        if (attempt >= 4 || !/address already in use/i.test(String(err)) || /router port|cluster/i.test(String(err))) throw err;
      }
    }
  }

  private async startOnce(): Promise<void> {
    // `-m -1`: a monitoring port of its own (the shipped configuration names 8222, which two servers cannot share).
    const args = [...(this.o.config ? ["-c", this.o.config, "-m", "-1"] : []), "-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.storeDir];
    const child = spawn(BINARY, args, { stdio: ["ignore", "ignore", "pipe"], env: { PATH: testEnv.PATH, ...this.o.env } });
    this.child = child;
    child.stderr?.on("data", (d: Buffer) => {
      // Bounded: a test reads the last few lines it caused, not the whole history.
      this.log = (this.log + d.toString()).slice(-256 * 1024);
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await new Promise<boolean>((r) => {
        const s = connect({ host: "127.0.0.1", port: this.port }, () => {
          s.destroy();
          r(true);
        });
        s.on("error", () => r(false));
      });
      if (up) return;
      if (child.exitCode !== null) throw new Error(`private nats-server exited at start: ${this.log.trim().split("\n").at(-1) ?? ""}`);
      if (Date.now() > deadline) throw new Error("private nats-server did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** kill -9: no chance to flush anything. */
  async kill(): Promise<void> {
    const c = this.child;
    // A process killed by a signal keeps exitCode null: signalCode says it is gone.
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
