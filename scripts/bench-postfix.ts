/**
 * A private Postfix instance for `pnpm bench:api`'s baseline: its own configuration and
 * queue in a temporary folder, listening on a loopback port, taking mail from loopback and
 * discarding it after it was queued (Postfix fsyncs the queue file before its 250). Needs
 * Postfix installed and root (Postfix's master starts as root); undefined otherwise.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

const POSTFIX = "/usr/sbin/postfix";

export interface PrivatePostfix {
  port: number;
  stop(): void;
}

export function startPostfix(port: number): PrivatePostfix | undefined {
  if (!existsSync(POSTFIX) || userInfo().uid !== 0 || !existsSync("/etc/postfix/master.cf")) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "bench-postfix-"));
  // Postfix's own user works in here too.
  chmodSync(dir, 0o755);
  const owner = execFileSync("id", ["-u", "postfix"]).toString().trim();
  mkdirSync(join(dir, "queue"));
  mkdirSync(join(dir, "data"));
  chownSync(join(dir, "data"), Number(owner), -1);
  writeFileSync(
    join(dir, "main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      "mail_owner = postfix",
      "myhostname = bench.localhost",
      "mydestination =",
      "mynetworks = 127.0.0.0/8",
      "inet_interfaces = loopback-only",
      "inet_protocols = ipv4",
      "smtpd_relay_restrictions = permit_mynetworks, reject",
      // Accepted, queued (fsynced), then thrown away: the SMTP door is what is measured.
      "default_transport = discard:bench",
      "relay_transport = discard:bench",
      "local_transport = discard:bench",
      "maillog_file_prefixes = /tmp",
      `maillog_file = ${dir}/maillog`,
      "",
    ].join("\n"),
  );
  // The packaged master.cf with its smtpd on our port.
  const master = readFileSync("/etc/postfix/master.cf", "utf8").replace(/^smtp(\s+inet\s)/m, `127.0.0.1:${port}$1`);
  writeFileSync(join(dir, "master.cf"), master);
  try {
    execFileSync(POSTFIX, ["-c", dir, "start"], { stdio: "ignore" });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    port,
    stop() {
      try {
        execFileSync(POSTFIX, ["-c", dir, "stop"], { stdio: "ignore" });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
