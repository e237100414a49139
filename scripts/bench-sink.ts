/**
 * The SMTP relay of `pnpm bench:api`, run as its own process: a bare smtp-server that writes
 * and fsyncs each message before its 250 (durable as an MTA's queue is), then forgets it.
 * Prints `port <n>` once listening; answers each line `count` on stdin with the number of
 * messages taken so far.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fsyncingSmtpServer } from "./bench-fsync-server.ts";

const dir = mkdtempSync(join(tmpdir(), "bench-sink-"));
// One file per message, reused: the write and the fsync are what an MTA's queue costs.
const { server, taken } = fsyncingSmtpServer(dir, (n) => `${n % 64}.eml`, 1_000);
server.listen(0, "127.0.0.1", () => process.stdout.write(`port ${(server.server.address() as { port: number }).port}\n`));
createInterface({ input: process.stdin })
  .on("line", (l) => l === "count" && process.stdout.write(`count ${taken()}\n`))
  .on("close", () => {
    server.close(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
