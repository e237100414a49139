import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inboxPrefixOf } from "@mam/bus/connection.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";

const CONFIG = fileURLToPath(new URL("../../infra/nats/nats.conf", import.meta.url));
const SERVICES = ["identity", "mailbox", "billing", "realtime"] as const;
/** Every user the configuration names needs a password for the server to start. */
const USERS = [...SERVICES, "gateway", "smtp-ingress", "admin"] as const;
type User = (typeof USERS)[number];
const passwordEnv = (u: User) => `NATS_${u.toUpperCase().replace(/-/g, "_")}_PASSWORD`;

/**
 * Operator requests (`mam rebuild`'s start and progress, `mam status`'s pings) come from the
 * admin user, whose replies arrive on `_INBOX_admin.>`: on the shipped, locked-down NATS
 * configuration every service they go to may answer there, or the operator sees a timeout
 * (status would call the service down, a rebuild would seem to hang).
 */
describe("operator replies on the shipped NATS configuration", () => {
  const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(12).toString("hex")}`])) as Record<User, string>;
  const nats = new PrivateNatsServer({ config: CONFIG, env: Object.fromEntries(USERS.map((u) => [passwordEnv(u), passwords[u]])) });
  const opened: NatsConnection[] = [];
  const as = async (user: User) => {
    const nc = await connect({ servers: nats.url, user, pass: passwords[user], inboxPrefix: inboxPrefixOf(user) });
    opened.push(nc);
    return nc;
  };

  beforeAll(() => nats.start(), 30_000);
  afterAll(async () => {
    for (const nc of opened) await nc.close().catch(() => undefined);
    await nats.stop();
  });

  it.each(SERVICES)("%s answers the operator's request on _INBOX_admin", async (service) => {
    const server = await as(service);
    const sub = server.subscribe(`svc.${service}.ops.ping`);
    void (async () => {
      for await (const m of sub) m.respond("pong");
    })();
    await server.flush();
    const admin = await as("admin");
    const reply = await admin.request(`svc.${service}.ops.ping`, "ping", { timeout: 3_000 }).then(
      (m) => m.string(),
      (err: Error) => err.message,
    );
    expect(reply).toBe("pong");
  });
});
