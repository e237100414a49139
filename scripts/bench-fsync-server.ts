/**
 * The bare baseline of the benchmarks: an smtp-server that writes and fsyncs each message
 * before its 250 (as durable as an MTA's queue), then forgets it.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

/** `fileOf(n)` names the n-th message's file in `dir`; `taken()` counts the messages stored. */
export function fsyncingSmtpServer(dir: string, fileOf: (n: number) => string, maxClients?: number): { server: SMTPServer; taken: () => number } {
  let taken = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    disableReverseLookup: true,
    logger: false,
    size: 25 * 1024 * 1024,
    ...(maxClients ? { maxClients } : {}),
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const fd = openSync(join(dir, fileOf(taken)), "w");
        writeSync(fd, Buffer.concat(chunks));
        fsyncSync(fd);
        closeSync(fd);
        taken++;
        cb();
      });
    },
  });
  return { server, taken: () => taken };
}
