import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { mam } from "./run-cli.ts";

/** `mam workspaces|keys|inboxes|status` run as processes against a started platform (independent runs side by side). */
describe("mam workspaces, keys, inboxes and status", () => {
  const s = new Stack({ logLevel: "warn" });
  let tk: Record<string, string>;
  let defaultWs: string;
  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    tk = { MAM_KEY: t.key.key };
    defaultWs = t.workspace.id;
  });
  afterAll(() => s.stop());

  it("creates, lists and deletes workspaces, keys and inboxes; API refusals as error lines", { timeout: 90_000 }, async () => {
    const [ws, key, inbox] = await Promise.all([
      mam(s, ["workspaces", "create", "Research", "--slug", "research", "--json"], tk),
      mam(s, ["keys", "create", defaultWs, "--name", "ci", "--json"], tk),
      mam(s, ["inboxes", "create", "robot", "--display-name", "Robot", "--json"], tk),
    ]);
    for (const r of [ws, key, inbox]) expect(r.code, r.stderr).toBe(0);
    expect(ws.json).toMatchObject({ name: "Research", slug: "research", isDefault: false });
    expect(key.json.key).toMatch(/^wk_/);
    expect(inbox.json).toMatchObject({ email: `robot@${s.mailDomain}`, displayName: "Robot", workspaceId: defaultWs });
    expect(inbox.json.apiKey).toMatch(/^ak_/);

    const [wsList, keyList, inboxList, conflict] = await Promise.all([
      mam(s, ["workspaces", "list"], tk),
      mam(s, ["keys", "list", defaultWs], tk),
      mam(s, ["inboxes", "list", "--json"], tk),
      mam(s, ["workspaces", "delete", defaultWs], tk),
    ]);
    expect(wsList.stdout).toMatch(new RegExp(`^${ws.json.id}\\s+Research\\s+research\\s+0\\s+0\\s`, "m"));
    expect(keyList.stdout).toMatch(new RegExp(`^${key.json.id}\\s+${key.json.prefix}\\s+ci\\s`, "m"));
    expect(inboxList.json.inboxes.map((i: { id: string }) => i.id)).toEqual([inbox.json.id]);
    // The Default workspace stays: the API's refusal, printed with its code.
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^error: .*[Dd]efault.* \(CONFLICT\)\n$/);

    const [revoked, inboxGone, wsGone] = await Promise.all([
      mam(s, ["keys", "revoke", defaultWs, key.json.id], tk),
      mam(s, ["inboxes", "delete", inbox.json.id], tk),
      mam(s, ["workspaces", "delete", ws.json.id], tk),
    ]);
    expect(revoked.stdout).toBe(`revoked key ${key.json.id}\n`);
    expect(inboxGone.stdout).toBe(`deleted inbox ${inbox.json.id}\n`);
    expect(wsGone.stdout).toBe(`deleted workspace ${ws.json.id}\n`);
    await waitFor(async () => (await s.api("GET", "/v1/workspaces", { key: key.json.key })).status === 401, { timeoutMs: 5_000, what: "the wk_ key refused" });
    expect((await s.api("GET", `/v1/inboxes/${inbox.json.id}`, { key: tk.MAM_KEY })).status).toBe(404);
    expect((await s.api("GET", `/v1/workspaces/${ws.json.id}`, { key: tk.MAM_KEY })).status).toBe(404);
  });

  it("status: the services up, every consumer with its numbers, the streams, the delivery queue", { timeout: 60_000 }, async () => {
    const [json, human] = await Promise.all([mam(s, ["status", "--json"], { MAM_KEY: s.operatorKey }), mam(s, ["status"], { MAM_KEY: s.operatorKey })]);
    expect(json.code, json.stderr).toBe(0);
    const up = Object.fromEntries(json.json.services.map((x: { service: string; up: boolean }) => [x.service, x.up]));
    expect(up).toEqual({ gateway: true, identity: true, mailbox: true, billing: false, realtime: false });
    const consumers = Object.fromEntries(json.json.consumers.map((c: { consumer: string }) => [c.consumer, c]));
    for (const name of ["identity-read-model", "mailbox-read-model", "mailbox-delivery", "mailbox-ingest"]) {
      expect(consumers[name]).toMatchObject({ pending: expect.any(Number), ackPending: expect.any(Number), redelivered: expect.any(Number) });
    }
    // Everything the tests above did is in the stream and applied.
    const events = json.json.streams.find((x: { stream: string }) => x.stream.endsWith("_EVENTS"));
    expect(events.lastSeq).toBeGreaterThan(5);
    expect(consumers["identity-read-model"].ackFloor).toBeGreaterThan(0);
    expect(json.json.deliveryQueue).toMatchObject({ messages: 0, due: 0, failureNotices: { waiting: 0, due: 0, trying: 0, nextTryAt: null } });
    expect(json.json.readModels.mailbox).toMatchObject({ rebuilding: false });
    expect(human.stdout).toMatch(/^mailbox\s+up\s+answered in \d+ ms\s+nats$/m);
    expect(human.stdout).toMatch(/^\S+_EVENTS\s+mailbox-read-model\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+$/m);
    expect(human.stdout).toMatch(/^0 messages, 0 due now/m);
    expect(human.stdout).toMatch(/^0 waiting, 0 due now, 0 being tried; next try -$/m);
  });
});
