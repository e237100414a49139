import type { Command } from "commander";
import { globalsOf } from "../context.ts";
import { emit } from "../output.ts";

/** `mam status`: what runs, how far behind each consumer is, the backlogs (see status-report.ts). */
export function registerStatus(program: Command): void {
  program
    .command("status")
    .description(
      "services up, each JetStream consumer's lag, the streams' backlogs, the delivery queue and read-model rebuilds (NATS_URL; the operator key for the last two)",
    )
    .option("--health <name=url...>", "a service's health endpoint to ask for /readyz (also MAM_HEALTH, comma separated)")
    .action(async (o: { health?: string[] }, cmd: Command) => {
      const g = globalsOf(cmd);
      const { render, statusReport } = await import("../status-report.ts");
      const report = await statusReport(g, o.health ?? []);
      emit(g, report, () => render(report));
    });
}
