/**
 * Keeps a set of processes running: each in its own child process, restarted with a growing
 * pause when it exits without being asked to, watched until its health endpoint says ready,
 * and stopped together (SIGTERM, then SIGKILL after a grace period). One that keeps failing
 * before it was ever ready (a bad setting, a port in use) stops them all instead.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "@mam/runtime/logger.ts";
import { onLines, type Stream } from "./log-format.ts";

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Polled after each start until it answers 200; the platform is ready when every child's has. */
  readyUrl: string;
}

export interface Backoff {
  /** Pause before the first restart; each further one doubles it. */
  initialMs: number;
  maxMs: number;
  /** Ready and running this long: the next crash counts as the first again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 30_000 };

/** Five failures before ever ready: 7.5 s of pauses, long enough for a server that is still starting. */
export const DEFAULT_GIVE_UP_AFTER = 5;

/**
 * Is this stderr line worth quoting as a child's last error? Not a stack frame or Node's
 * version footer, which follow the message of an uncaught error.
 */
const telling = (line: string) => line.trim() !== "" && !/^\s+at /.test(line) && !/^Node\.js v\d/.test(line);

export interface SupervisorOptions {
  logger: Logger;
  /** Every line a child writes, split at newlines (without them). */
  onLine: (name: string, stream: Stream, line: string) => void;
  /** Every child ready at once; `first` only the first time (later: after a restart). */
  onReady?: (first: boolean) => void;
  backoff?: Backoff;
  /**
   * Failures in a row of a child never ready since start() after which the supervisor gives
   * up: it logs the child's last error and stops every child. One ready once is always restarted.
   */
  giveUpAfter?: number;
  /** Called once when the supervisor gives up on the child so named (it is stopping everything). */
  onGiveUp?: (name: string) => void;
  /** After SIGTERM, how long children have to exit before SIGKILL. */
  graceMs?: number;
  readyPollMs?: number;
}

/** The pause before restart number `attempt` (1, 2, ...). */
export function restartDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, attempt - 1));
}

interface Slot {
  spec: ChildSpec;
  child?: ChildProcess;
  /** Crashes in a row, without a healthy run long enough between them. */
  attempt: number;
  readyAt?: number;
  /** Ready at least once since start(). */
  everReady: boolean;
  /** The last telling line its current run wrote on stderr. */
  lastError?: string;
  restartTimer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

export class Supervisor {
  private readonly slots = new Map<string, Slot>();
  private readonly backoff: Backoff;
  private readonly graceMs: number;
  private readonly readyPollMs: number;
  private readonly giveUpAfter: number;
  private gaveUpOn?: string;
  private stopping?: Promise<boolean>;
  private allReady = false;
  private everReady = false;

  constructor(
    specs: readonly ChildSpec[],
    private readonly o: SupervisorOptions,
  ) {
    for (const spec of specs) this.slots.set(spec.name, { spec, attempt: 0, everReady: false });
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.graceMs = o.graceMs ?? 15_000;
    this.readyPollMs = o.readyPollMs ?? 200;
    this.giveUpAfter = o.giveUpAfter ?? DEFAULT_GIVE_UP_AFTER;
  }

  start(): void {
    for (const slot of this.slots.values()) this.launch(slot);
  }

  /** The running children's process ids, by name. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.slots].map(([name, s]) => [name, s.child?.pid]));
  }

  get ready(): boolean {
    return this.allReady;
  }

  /** The child it gave up on (see giveUpAfter), if it did. */
  get gaveUp(): string | undefined {
    return this.gaveUpOn;
  }

  /**
   * Stops every child: SIGTERM now, SIGKILL to those still running after the grace period.
   * Resolves when all have exited: true when each stopped as asked (exit code 0, or ended by
   * the SIGTERM or SIGINT it was sent), false when one failed or had to be killed.
   */
  stop(): Promise<boolean> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  /** A second Ctrl-C: no more waiting. */
  kill(): void {
    for (const s of this.slots.values()) s.child?.kill("SIGKILL");
  }

  private async stopAll(): Promise<boolean> {
    let clean = true;
    for (const s of this.slots.values()) {
      clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
    }
    const running = [...this.slots.values()].filter((s) => s.child && s.exited);
    for (const s of running) {
      s.child!.once("exit", (code, signal) => {
        if (code !== 0 && signal !== "SIGTERM" && signal !== "SIGINT") clean = false;
      });
      s.child!.kill("SIGTERM");
    }
    const force = setTimeout(() => {
      for (const s of running) {
        if (s.child?.exitCode === null && s.child.signalCode === null) {
          clean = false;
          this.o.logger.warn({ child: s.spec.name, pid: s.child.pid, graceMs: this.graceMs }, `${s.spec.name} did not stop in time; killing it`);
          s.child.kill("SIGKILL");
        }
      }
    }, this.graceMs);
    await Promise.all(running.map((s) => s.exited));
    clearTimeout(force);
    return clean;
  }

  private launch(slot: Slot): void {
    const { spec } = slot;
    // stdin: a pipe left open and never written; its end tells the child we are gone (see exit-with-parent.ts).
    const child = spawn(spec.command, spec.args, { env: spec.env, stdio: ["pipe", "pipe", "pipe"] });
    slot.child = child;
    slot.readyAt = undefined;
    slot.lastError = undefined;
    this.o.logger.info({ child: spec.name, pid: child.pid, attempt: slot.attempt }, `${spec.name} started (pid ${child.pid})`);
    onLines(child.stdout!, (l) => this.o.onLine(spec.name, "stdout", l));
    onLines(child.stderr!, (l) => {
      if (telling(l)) slot.lastError = l.trim();
      this.o.onLine(spec.name, "stderr", l);
    });
    // "close", not "exit": its last lines are read by then.
    slot.exited = new Promise((resolve) =>
      child.once("close", (code, signal) => {
        this.exited(slot, child, code, signal);
        resolve();
      }),
    );
    child.once("error", (err) => this.o.logger.error({ child: spec.name, err }, `${spec.name} could not be started`));
    void this.watchReadiness(slot, child);
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const name = slot.spec.name;
    if (slot.child !== child) return;
    slot.child = undefined;
    this.allReady = false;
    if (this.stopping) {
      this.o.logger.info({ child: name, pid: child.pid, code, signal }, `${name} stopped (${signal ?? `code ${code}`})`);
      return;
    }
    // A healthy stretch long enough forgives the crashes before it.
    if (slot.readyAt !== undefined && Date.now() - slot.readyAt >= this.backoff.resetAfterMs) slot.attempt = 0;
    slot.attempt++;
    if (!slot.everReady && slot.attempt >= this.giveUpAfter) {
      // Restarting it again would only repeat the same error, forever: say which, and stop.
      this.gaveUpOn = name;
      this.o.logger.error(
        { child: name, pid: child.pid, code, signal, attempt: slot.attempt, lastError: slot.lastError },
        `${name} failed ${slot.attempt} times in a row without becoming ready; stopping everything. Its last error: ${slot.lastError ?? `none on stderr (${signal ?? `code ${code}`})`}`,
      );
      void this.stop();
      this.o.onGiveUp?.(name);
      return;
    }
    const delayMs = restartDelay(slot.attempt, this.backoff);
    this.o.logger.warn(
      { child: name, pid: child.pid, code, signal, attempt: slot.attempt, delayMs },
      `${name} exited unexpectedly (${signal ?? `code ${code}`}); restart ${slot.attempt} in ${delayMs / 1000} s`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.launch(slot);
    }, delayMs);
  }

  private async watchReadiness(slot: Slot, child: ChildProcess): Promise<void> {
    while (slot.child === child && !this.stopping) {
      const ok = await fetch(slot.spec.readyUrl, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => {
          void r.body?.cancel();
          return r.status === 200;
        },
        () => false,
      );
      if (slot.child !== child || this.stopping) return;
      if (ok) {
        slot.readyAt = Date.now();
        slot.everReady = true;
        this.o.logger.info({ child: slot.spec.name, pid: child.pid }, `${slot.spec.name} ready`);
        this.checkAllReady();
        return;
      }
      await new Promise((r) => setTimeout(r, this.readyPollMs));
    }
  }

  private checkAllReady(): void {
    if (this.allReady || ![...this.slots.values()].every((s) => s.child && s.readyAt !== undefined)) return;
    this.allReady = true;
    const first = !this.everReady;
    this.everReady = true;
    this.o.onReady?.(first);
  }
}
