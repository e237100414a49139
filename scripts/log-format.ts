/**
 * How `pnpm start` shows the lines of its services: their JSON as it is (for a collector),
 * or through pino-pretty with the service's name in front (for a person at a terminal).
 */
import { prettyFactory } from "pino-pretty";

export type LogFormat = "json" | "pretty";

/** Where a line came from: the child's stdout goes to ours, its stderr to ours. */
export type Stream = "stdout" | "stderr";

/**
 * `--json` / `--pretty` win over LOG_FORMAT, which wins over what stdout is: a terminal
 * gets pretty lines, anything else (a pipe, a file, a container's log) JSON.
 */
export function chooseLogFormat(argv: readonly string[], env: NodeJS.ProcessEnv, stdoutIsTTY: boolean): LogFormat {
  const flags = argv.filter((a) => a === "--json" || a === "--pretty");
  if (flags.length) return flags.at(-1) === "--json" ? "json" : "pretty";
  const given = env.LOG_FORMAT?.trim().toLowerCase();
  if (given === "json" || given === "pretty") return given;
  if (given) throw new Error(`LOG_FORMAT must be json or pretty, not ${JSON.stringify(env.LOG_FORMAT)}`);
  return stdoutIsTTY ? "pretty" : "json";
}

const RESET = "\x1b[0m";
const BOLD = "\x1b[1m";
/** Cyan, green, yellow, magenta, blue, and their bright kin: one per service, stable by order. */
const PALETTE = ["\x1b[36m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[92m", "\x1b[95m"];

/** A line that parses as a pino record (an object with a level), or undefined. */
function record(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) && "level" in v ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface Output {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * Writes the lines of named sources in one format. JSON: a pino line passes unchanged (it
 * names its service already) and any other line becomes one JSON line naming its source, so
 * every line of our stdout parses. Pretty: each line gets the source's name, coloured on a
 * terminal; a pino line is rendered by pino-pretty, anything else passes as it is.
 */
export class LineFormatter {
  private readonly pretty: (record: Record<string, unknown>) => string;
  private readonly width: number;
  private readonly colours = new Map<string, string>();

  constructor(
    readonly format: LogFormat,
    sources: readonly string[],
    private readonly out: Output,
    private readonly colour: boolean,
  ) {
    this.width = Math.max(...sources.map((s) => s.length));
    for (const [i, s] of sources.entries()) this.colours.set(s, PALETTE[i % PALETTE.length]!);
    this.pretty = prettyFactory({
      colorize: colour,
      singleLine: true,
      translateTime: "SYS:HH:MM:ss.l",
      // The prefix names the service; pid and host are the same on every line of one machine.
      ignore: "pid,hostname,service,name",
    });
  }

  line(source: string, stream: Stream, line: string): void {
    const write = stream === "stdout" ? this.out.stdout : this.out.stderr;
    if (this.format === "json") {
      if (record(line)) write(`${line}\n`);
      else if (line.trim()) write(`${JSON.stringify({ level: stream === "stderr" ? 50 : 30, time: new Date().toISOString(), service: source, msg: line })}\n`);
      return;
    }
    if (!line.trim()) return;
    const r = record(line);
    const text = r ? this.pretty(r).replace(/\n+$/, "") : line;
    const prefix = this.prefix(source);
    const lines = text.split("\n").map((l) => `${prefix} ${l}`);
    write(`${lines.join("\n")}\n`);
  }

  /** A notice for the person at the terminal, not a log line: as it is, on the stream the format leaves free for it. */
  notice(text: string): void {
    // JSON mode keeps stdout to JSON lines; stderr is where a person still sees it.
    (this.format === "json" ? this.out.stderr : this.out.stdout)(text);
  }

  paint(text: string, code = BOLD): string {
    return this.colour ? `${code}${text}${RESET}` : text;
  }

  private prefix(source: string): string {
    const name = `${source.padEnd(this.width)} |`;
    return this.colour ? `${this.colours.get(source) ?? BOLD}${name}${RESET}` : name;
  }
}

/** Splits a byte stream into lines; the last, unterminated one is given at the end. */
export function onLines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const p of parts) each(p.endsWith("\r") ? p.slice(0, -1) : p);
  });
  stream.on("end", () => {
    if (rest) each(rest);
    rest = "";
  });
}

/** The generated operator key, framed so that it is not lost among the start-up lines. */
export function operatorKeyBox(key: string): string[] {
  const lines = [
    "Operator key, generated now (stored hashed; it cannot be shown again):",
    "",
    `    ${key}`,
    "",
    "Keep it: it creates tenants (X-API-Key on /v1/tenants).",
    "To choose your own, start with SUPER_ADMIN_KEY=sa_<22+ URL-safe characters>;",
    "that key then becomes the only operator key.",
  ];
  const width = Math.max(...lines.map((l) => l.length));
  return [`┌${"─".repeat(width + 4)}┐`, ...lines.map((l) => `│  ${l.padEnd(width)}  │`), `└${"─".repeat(width + 4)}┘`];
}
