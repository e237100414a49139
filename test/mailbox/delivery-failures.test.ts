import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@mam/testing/processes.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** A relay that never answers: the message is retried, then bounced, never lost silently. */
describe("delivery failures", () => {
  let s: Stack;
  beforeAll(async () => {
    const dead = await freePort();
    s = new Stack({ logLevel: "silent", mailboxEnv: { SMTP_RELAY_URL: `smtp://127.0.0.1:${dead}`, DELIVERY_GIVE_UP_AFTER_S: "0" } });
    await s.start();
  });
  afterAll(() => s.stop());

  it("an unreachable relay ends in a bounce once the attempts are used up", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "sender" } })).body;
    const r = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "far@example.com", subject: "x", plainBody: "x", verified: true },
    });
    expect(r.status).toBe(200);
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${r.body.id}`, { key: inbox.apiKey })).body.status === "bounced", {
      timeoutMs: 15_000,
      what: "bounce",
    });
  });
});
