import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./processes.ts";
import { testEnv } from "./config.ts";

const PG_ROOT = "/usr/lib/postgresql";

/** The newest server binaries Debian's packages installed (`/usr/lib/postgresql/<major>/bin`). */
function binDir(): string {
  const majors = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => existsSync(join(PG_ROOT, v, "bin", "postgres"))) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no PostgreSQL server binaries under ${PG_ROOT}/*/bin`);
  return join(PG_ROOT, newest, "bin");
}

/** initdb and postgres refuse to run as root: as root we run them as the `postgres` user. */
function unprivileged(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error("running as root and there is no `postgres` user to run PostgreSQL as");
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * A PostgreSQL cluster of the test's own (own data directory, own port) that it may stop,
 * kill -9 and restart, unlike the machine's shared server, which must never go down.
 */
export class PrivatePostgresServer {
  readonly dir = mkdtempSync(join(tmpdir(), "pg-private-"));
  readonly dataDir = join(this.dir, "data");
  port = 0;
  private readonly bin = binDir();
  private readonly user = unprivileged();
  private child?: ChildProcess;
  private log = "";
  private initialised = false;
  /** A test process that dies must not leave a postmaster behind. */
  private readonly onExit = () => this.signal("SIGKILL");

  constructor() {
    if (this.user) chownSync(this.dir, this.user.uid, this.user.gid);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Creates the cluster on first use; later calls restart it on the same port and data. */
  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    if (!this.initialised) {
      await promisify(execFile)(join(this.bin, "initdb"), ["-D", this.dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], {
        ...this.user,
        env: { PATH: testEnv.PATH },
      });
      this.initialised = true;
    }
    const args = ["-D", this.dataDir, "-p", String(this.port), "-k", this.dir];
    for (const c of ["listen_addresses=127.0.0.1", "fsync=off", "shared_buffers=32MB", "max_connections=50"]) args.push("-c", c);
    this.log = "";
    // Its own process group, so kill9() reaches the backends too (a restart needs them gone).
    const child = spawn(join(this.bin, "postgres"), args, { ...this.user, env: { PATH: testEnv.PATH }, stdio: ["ignore", "ignore", "pipe"], detached: true });
    child.stderr!.on("data", (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4_000)));
    this.child = child;
    process.on("exit", this.onExit);
    await this.waitUntilReady(child);
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`private postgres exited: ${this.log}`);
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000 });
      client.on("error", () => undefined);
      const up = await client.connect().then(
        () => client.query("select 1").then(() => true),
        () => false,
      );
      await client.end().catch(() => undefined);
      if (up) return;
      if (Date.now() > deadline) throw new Error(`private postgres did not accept connections: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private signal(sig: NodeJS.Signals): void {
    const c = this.child;
    if (c?.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(sig === "SIGKILL" ? -c.pid : c.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  private async until(sig: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return true;
    const exited = new Promise<boolean>((r) => c.once("exit", () => r(true)));
    this.signal(sig);
    return Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
  }

  /** Fast shutdown (SIGINT): sessions are ended, the cluster is left clean. */
  async stop(): Promise<void> {
    if (!(await this.until("SIGINT", 10_000))) await this.kill9();
    process.off("exit", this.onExit);
  }

  /** kill -9 of the postmaster and its backends: the next start runs crash recovery. */
  async kill9(): Promise<void> {
    await this.until("SIGKILL", 10_000);
    process.off("exit", this.onExit);
  }

  /** Same port, same data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
