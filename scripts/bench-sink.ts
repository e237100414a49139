/**
 * The SMTP relay of `pnpm bench:api`, run as its own process: a bare smtp-server that writes
 * and fsyncs each message before its 250 (durable as an MTA's queue is), then forgets it.
 * Prints `port <n>` once listening; answers each line `count` on stdin with the number of
 * messages taken so far.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SMTPServer } from "smtp-server";

const dir = mkdtempSync(join(tmpdir(), "bench-sink-"));
let taken = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  disableReverseLookup: true,
  logger: false,
  size: 25 * 1024 * 1024,
  maxClients: 1_000,
  onData(stream, _session, cb) {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      // One file per message, reused: the write and the fsync are what an MTA's queue costs.
      const file = join(dir, `${taken % 64}.eml`);
      const fd = openSync(file, "w");
      writeSync(fd, Buffer.concat(chunks));
      fsyncSync(fd);
      closeSync(fd);
      taken++;
      cb();
    });
  },
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`port ${(server.server.address() as { port: number }).port}\n`));
createInterface({ input: process.stdin })
  .on("line", (l) => l === "count" && process.stdout.write(`count ${taken}\n`))
  .on("close", () => {
    server.close(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
