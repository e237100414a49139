import type { Command } from "commander";
import { CliError, globalsOf } from "../context.ts";
import { READ_MODELS } from "../operator.ts";

/**
 * `mam rebuild <read model>`: the replica holding the read model's lease empties it and
 * replays the event stream into it (see rebuild-run.ts, which follows it with a bar).
 */
export function registerRebuild(program: Command): void {
  program
    .command("rebuild")
    .description(
      `empty a read model and replay the event stream into it while the service runs (operator key; NATS_URL). Read models: ${Object.keys(READ_MODELS).join(", ")}`,
    )
    .argument("<readModel>", "the read model to rebuild")
    .option("--no-wait", "start the rebuild and return without following it")
    .action(async (name: string, o: { wait: boolean }, cmd: Command) => {
      const g = globalsOf(cmd);
      const model = READ_MODELS[name];
      if (!model) throw new CliError(`unknown read model "${name}" (one of: ${Object.keys(READ_MODELS).join(", ")})`, "VALIDATION_ERROR");
      const { runRebuild } = await import("../rebuild-run.ts");
      await runRebuild(g, model, o.wait);
    });
}
