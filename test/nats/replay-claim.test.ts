import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { Stack } from "../support/stack.ts";

const SHIPPED = fileURLToPath(new URL("../../infra/nats/nats.conf", import.meta.url));
const USERS = ["identity", "mailbox", "gateway", "smtp-ingress", "billing", "realtime", "admin"] as const;
type User = (typeof USERS)[number];
const DELETE_READ_MODEL = `"$JS.API.CONSUMER.DELETE.EVENTS.identity-read-model",`;

/**
 * A read model without a checkpoint is replayed by deleting its consumer. When that delete
 * fails (here: a server that does not let identity delete it; in a cluster, a timeout while
 * the consumer's leader is elected), the start must fail and record nothing: recording the
 * replay as begun would leave the old consumer going on from where it was, and the emptied
 * read model would never be rebuilt.
 */
describe("a read model's replay when its consumer cannot be deleted", () => {
  const dir = mkdtempSync(join(tmpdir(), "replay-claim-"));
  const config = join(dir, "nats.conf");
  const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(12).toString("hex")}`])) as Record<User, string>;
  const nats = new PrivateNatsServer({
    config,
    env: Object.fromEntries(USERS.map((u) => [`NATS_${u.toUpperCase().replace(/-/g, "_")}_PASSWORD`, passwords[u]])),
  });
  /** The NATS user identity connects as at its next start. */
  let user: User = "admin";
  const s = new Stack({
    logLevel: "silent",
    mailbox: false,
    natsEnv: () => ({ NATS_URL: nats.url, NATS_PREFIX: "", NATS_USER: user, NATS_PASSWORD: passwords[user] }),
  });
  const schema = s.iso.schema("identity");
  const query = async (text: string) => {
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    try {
      return (await c.query(text)).rows;
    } finally {
      await c.end();
    }
  };
  const checkpoints = () => query(`select tenant_key, stream_seq::int as seq from ${schema}.projection_checkpoint where projection = 'identity-read-model'`);

  beforeAll(async () => {
    const shipped = readFileSync(SHIPPED, "utf8");
    expect(shipped).toContain(DELETE_READ_MODEL);
    writeFileSync(config, shipped.replace(DELETE_READ_MODEL, ""));
    await nats.start();
  });
  afterAll(async () => {
    await s.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses to start, records no replay, and the next start allowed to delete replays", async () => {
    const first = await s.startIdentity();
    const keys = await query(`select key_id from ${schema}.api_keys order by key_id`);
    expect(keys.length).toBeGreaterThan(0);
    await first.destroy();

    // The operator empties the read model to have it rebuilt from the stream.
    const tables = (
      await query(`select tablename from pg_tables where schemaname = '${schema}' and tablename not like 'kysely%' and tablename <> 'outbox'`)
    ).map((r) => r.tablename as string);
    expect(tables).toContain("projection_checkpoint");
    await query(`truncate ${tables.map((t) => `${schema}.${t}`).join(", ")}`);

    user = "identity";
    await expect(s.startIdentity()).rejects.toThrow(/permission/i);
    expect(await checkpoints()).toEqual([]);

    user = "admin";
    await s.startIdentity();
    expect(await query(`select key_id from ${schema}.api_keys order by key_id`)).toEqual(keys);
  }, 60_000);
});
