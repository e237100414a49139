import { setTimeout as sleep } from "node:timers/promises";
import cliProgress from "cli-progress";
import type { Bus } from "@mam/bus/connection.ts";
import { CliError, type Globals } from "./context.ts";
import { operatorRequest, withBus } from "./nats.ts";
import { rebuildSubject, type RebuildProgress } from "./operator.ts";

const POLL_MS = 500;

/** Between one holder's end and the next one's start nobody answers: asked again for a while. */
async function ask(g: Globals, bus: Bus, subject: string): Promise<RebuildProgress> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operatorRequest<RebuildProgress>(g, bus, subject, { action: "progress" }, 10_000);
    } catch (err) {
      if (attempt >= 20 || !(err instanceof CliError) || err.code !== "UNAVAILABLE") throw err;
      await sleep(POLL_MS);
    }
  }
}

/**
 * Starts the rebuild, or finds one under way to follow. A start may go unanswered for a long
 * while (the reset waits for what is being applied and for commands in flight) or be refused
 * as UNAVAILABLE (no holder during a hand-over, a holder that lost its lease): the progress
 * says whether it began, else it is asked again. CONFLICT: one is under way already.
 */
async function start(g: Globals, bus: Bus, subject: string): Promise<{ progress: RebuildProgress; already: boolean }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { progress: await operatorRequest<RebuildProgress>(g, bus, subject, { action: "start" }, 60_000), already: false };
    } catch (err) {
      if (!(err instanceof CliError) || (err.code !== "CONFLICT" && err.code !== "UNAVAILABLE")) throw err;
      if (err.code === "UNAVAILABLE" && attempt >= 20) throw err;
      const p = await ask(g, bus, subject);
      if (p.rebuilding) return { progress: p, already: err.code === "CONFLICT" };
      // CONFLICT then done already: the one under way has finished.
      if (err.code === "CONFLICT") return { progress: p, already: true };
      await sleep(POLL_MS);
    }
  }
}

/**
 * Starts the rebuild, then polls its progress (the stream sequence applied against the
 * stream's last sequence at the start) and draws it: a bar with an ETA on a terminal, a line
 * a second and one at the end otherwise (a pipe, a log).
 */
export async function runRebuild(g: Globals, model: { service: string; projection: string }, wait: boolean): Promise<void> {
  const subject = rebuildSubject(model.service, model.projection);
  let already = false;
  const last = await withBus(async (bus) => {
    const begun = await start(g, bus, subject);
    const started = begun.progress;
    already = begun.already;
    if (!g.json) {
      process.stderr.write(
        `${already ? "a rebuild is under way already: following it; " : ""}rebuilding ${model.projection} from the stream's first event up to sequence ${started.targetSeq}: ` +
          "reads answer from what is replayed so far (partial until done), commands are refused until then\n",
      );
    }
    if (!wait) return started;
    const total = Math.max(1, started.targetSeq);
    const bar = new cliProgress.SingleBar({
      format: `${model.projection} [{bar}] {percentage}% | seq {value}/{total} | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 1_000,
      etaBuffer: 20,
    });
    if (!g.json) bar.start(total, 0);
    let p = started;
    while (p.rebuilding) {
      if (!g.json) bar.update(Math.min(p.appliedSeq, total));
      await sleep(POLL_MS);
      p = await ask(g, bus, subject);
    }
    if (!g.json) {
      bar.update(total);
      bar.stop();
    }
    return p;
  });
  if (g.json) process.stdout.write(`${JSON.stringify(last, null, 2)}\n`);
  else if (!wait) process.stdout.write(`${model.projection}: rebuild ${already ? "under way already" : "started"} (follow it with: mam status)\n`);
  else process.stdout.write(`${model.projection} rebuilt: every event up to sequence ${last.appliedSeq} applied (${last.redelivered} redelivered)\n`);
}
