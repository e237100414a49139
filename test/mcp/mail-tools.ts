import { afterAll, beforeAll, expect, it } from "vitest";
import type { CallToolResult, Client } from "@mam/mcp/client.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack, type StackOptions } from "../support/stack.ts";

/*
 * What an agent does with the mail tools, the same over either transport: the test files
 * give the way to connect an MCP client with a key (stdio process, or the gateway's HTTP).
 */

export interface InboxInfo {
  id: string;
  apiKey: string;
  email: string;
}

export interface World {
  s: Stack;
  relay: SmtpSink;
  tenantKey: string;
  /** A and B: inboxes of one tenant; C: of another. */
  a: InboxInfo;
  b: InboxInfo;
  c: InboxInfo;
  /** Every key of the world, which no result or log line may show. */
  keys: string[];
}

export async function startWorld(o: StackOptions = {}): Promise<World> {
  const relay = new SmtpSink();
  const s = new Stack({ logLevel: "info", ...o, mailboxEnv: { SMTP_RELAY_URL: await relay.start(), ...o.mailboxEnv } });
  await s.start();
  const t1 = await provisionTenant(s, "Agents");
  const t2 = await provisionTenant(s, "Others");
  const inbox = async (key: string, username: string): Promise<InboxInfo> => {
    const r = await s.api("POST", "/v1/inboxes", { key, body: { username } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  };
  const a = await inbox(t1.key.key, "mcp-agent");
  const b = await inbox(t1.key.key, "mcp-peer");
  const c = await inbox(t2.key.key, "mcp-stranger");
  return { s, relay, tenantKey: t1.key.key, a, b, c, keys: [t1.key.key, t2.key.key, a.apiKey, b.apiKey, c.apiKey, s.operatorKey] };
}

export async function stopWorld(w: World | undefined): Promise<void> {
  await w?.s.stop();
  await w?.relay.stop();
}

const TOOLS = [
  "create_draft",
  "delete_draft",
  "forward_message",
  "get_draft",
  "get_message",
  "get_thread",
  "list_drafts",
  "list_inboxes",
  "list_messages",
  "list_threads",
  "reply_to_message",
  "search_messages",
  "send_draft",
  "send_message",
  "update_draft",
];

type Json = Record<string, any>;

/**
 * The tests of the tools, for a world and a way to connect a client with a key. `seen`
 * collects every result, to look for keys in afterwards.
 */
export function mailToolsTests(world: () => World, connect: (key: string) => Promise<Client>): void {
  let agent: Client;
  let tenant: Client;
  const seen: CallToolResult[] = [];
  const w = () => world();

  async function call(client: Client, name: string, args: Json = {}): Promise<CallToolResult & { structuredContent: Json }> {
    const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
    seen.push(r);
    return r as CallToolResult & { structuredContent: Json };
  }
  /** A call that must succeed: its structured content. */
  async function ok(client: Client, name: string, args: Json = {}): Promise<Json> {
    const r = await call(client, name, args);
    expect(r.isError ?? false, `${name}: ${JSON.stringify(r.content)}`).toBe(false);
    expect(r.content[0]).toMatchObject({ type: "text", text: expect.any(String) });
    return r.structuredContent;
  }
  /** A call that must fail with this code: its text. */
  async function fails(client: Client, name: string, args: Json, code: string): Promise<string> {
    const r = await call(client, name, args);
    expect(r.isError, `${name} should fail: ${JSON.stringify(r.content)}`).toBe(true);
    expect(r.structuredContent).toMatchObject({ code, error: expect.any(String) });
    const text = (r.content[0] as { text: string }).text;
    expect(text.startsWith(`${code}: `), text).toBe(true);
    return text;
  }
  const textOf = (r: CallToolResult) => (r.content[0] as { text: string }).text;

  beforeAll(async () => {
    [agent, tenant] = await Promise.all([connect(w().a.apiKey), connect(w().tenantKey)]);
  });
  afterAll(async () => {
    await Promise.all([agent?.close(), tenant?.close()]);
  });

  it("lists its tools, each taking the API's own fields", async () => {
    const { tools } = await agent.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    const send = tools.find((t) => t.name === "send_message")!;
    expect([...(send.inputSchema.required ?? [])].sort()).toEqual(["inboxId", "subject", "to"]);
    expect(Object.keys(send.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(["cc", "bcc", "plainBody", "htmlBody", "verified", "attachments"]));
    expect(send.annotations).toMatchObject({ readOnlyHint: false, openWorldHint: true });
    const get = tools.find((t) => t.name === "get_message")!;
    expect((get.inputSchema.properties as Json).messageId).toMatchObject({ type: "string", format: "uuid" });
    expect(tools.find((t) => t.name === "list_inboxes")!.annotations).toMatchObject({ readOnlyHint: true });
  });

  it("list_inboxes: an inbox key sees its own inbox only; the tenant's key sees its two", async () => {
    const r = await call(agent, "list_inboxes");
    expect(r.structuredContent.inboxes.map((i: Json) => i.id)).toEqual([w().a.id]);
    expect(textOf(r)).toContain(w().a.email);
    expect(textOf(r)).toContain(w().a.id);
    const all = await ok(tenant, "list_inboxes");
    expect(all.inboxes.map((i: Json) => i.id).sort()).toEqual([w().a.id, w().b.id].sort());
  });

  let sent: Json;
  let inbound: Json;
  let reply: Json;
  it("sends, replies and forwards through the tools, and the mail arrives", async () => {
    const { s, a, b, relay } = w();
    sent = await ok(agent, "send_message", { inboxId: a.id, to: b.email, subject: "Quarterly plan", plainBody: "The budget is 42 apples.", verified: true });
    expect(sent).toMatchObject({ id: expect.any(String), threadId: expect.any(String), status: "sent" });
    const bInbound = async () => (await s.api("GET", `/v1/inboxes/${b.id}/messages?direction=inbound`, { key: b.apiKey })).body.messages as Json[];
    await waitFor(async () => (await bInbound()).length === 1, { timeoutMs: 10_000, what: "B receives the message" });
    const atB = (await bInbound())[0]!;
    expect(atB).toMatchObject({ subject: "Quarterly plan", plainBody: "The budget is 42 apples." });
    const answer = await s.api("POST", `/v1/inboxes/${b.id}/reply/${atB.id}`, { key: b.apiKey, body: { plainBody: "Make it 43 pears." } });
    expect(answer.status).toBe(200);

    await waitFor(async () => (await ok(agent, "list_messages", { inboxId: a.id, direction: "inbound" })).messages.length === 1, {
      timeoutMs: 10_000,
      what: "A receives the answer",
    });
    inbound = (await ok(agent, "list_messages", { inboxId: a.id, direction: "inbound" })).messages[0];
    expect(inbound).toMatchObject({ threadId: sent.threadId, plainBody: "Make it 43 pears.", direction: "inbound" });

    reply = await ok(agent, "reply_to_message", { inboxId: a.id, messageId: inbound.id, plainBody: "Agreed: 43 pears." });
    expect(reply).toMatchObject({ threadId: sent.threadId, status: "sent" });
    await waitFor(async () => (await bInbound()).length === 2, { timeoutMs: 10_000, what: "B receives the reply" });
    expect((await bInbound()).find((m) => m.plainBody === "Agreed: 43 pears.")).toMatchObject({ subject: "Re: Quarterly plan" });

    const fwd = await ok(agent, "forward_message", { inboxId: a.id, messageId: inbound.id, to: "partner@example.com", plainBody: "FYI", verified: true });
    expect(fwd.threadId).not.toBe(sent.threadId);
    await waitFor(() => relay.received.some((m) => m.to.includes("partner@example.com")), { timeoutMs: 10_000, what: "the relay gets the forward" });
    const forwarded = relay.received.find((m) => m.to.includes("partner@example.com"))!;
    expect(forwarded.raw.toString()).toContain("43 pears");
  });

  it("reads messages and threads, and searches them", async () => {
    const { a } = w();
    const one = await call(agent, "get_message", { inboxId: a.id, messageId: inbound.id });
    expect(one.structuredContent).toMatchObject({ id: inbound.id, plainBody: "Make it 43 pears.", isRead: true });
    expect(textOf(one)).toContain("Make it 43 pears.");
    expect(textOf(one)).toContain(`Subject: Re: Quarterly plan`);

    const thread = await call(agent, "get_thread", { inboxId: a.id, threadId: sent.threadId });
    expect(thread.structuredContent.messages.map((m: Json) => m.id)).toEqual([sent.id, inbound.id, reply.id]);
    expect(textOf(thread)).toContain("Agreed: 43 pears.");

    const threads = await ok(agent, "list_threads", { inboxId: a.id, folder: "inbox" });
    expect(threads.messages.map((t: Json) => t.threadId)).toContain(sent.threadId);
    const sentFolder = await ok(agent, "list_threads", { folder: "sent" });
    expect(sentFolder.messages.every((t: Json) => t.inboxId === a.id)).toBe(true);
    expect(sentFolder.messages.length).toBeGreaterThan(0);

    const pears = await call(agent, "search_messages", { inboxId: a.id, query: "43 PEARS", direction: "inbound" });
    expect(pears.structuredContent.matches.map((m: Json) => m.id)).toEqual([inbound.id]);
    expect(pears.structuredContent.nextCursor).toBeNull();
    expect(textOf(pears)).toContain(inbound.id);
    const apples = await ok(agent, "search_messages", { inboxId: a.id, query: "quarterly apples" });
    expect(apples.matches.map((m: Json) => m.id)).toContain(sent.id);
    expect(apples.matches.map((m: Json) => m.id)).not.toContain(reply.id);
    expect(await ok(agent, "search_messages", { inboxId: a.id, query: "zebra" })).toMatchObject({ matches: [], nextCursor: null });

    // One message a call, each going on from the last one's cursor: the same matches in the end.
    const all = (await ok(agent, "list_messages", { inboxId: a.id })).messages.length;
    const found: string[] = [];
    let cursor: string | undefined;
    let calls = 0;
    do {
      const r = await ok(agent, "search_messages", { inboxId: a.id, query: "pears", scanLimit: 1, ...(cursor && { cursor }) });
      expect(r.scanned).toBe(1);
      found.push(...r.matches.map((m: Json) => m.id));
      cursor = r.nextCursor ?? undefined;
      calls++;
    } while (cursor);
    expect(calls).toBe(all);
    expect(found.sort()).toEqual((await ok(agent, "search_messages", { inboxId: a.id, query: "pears" })).matches.map((m: Json) => m.id).sort());
    expect(found).toEqual(expect.arrayContaining([inbound.id, reply.id]));
  });

  it("drafts: create, list, read, update, send, delete", async () => {
    const { a, relay } = w();
    const d = await ok(agent, "create_draft", { inboxId: a.id, to: "client@example.com", subject: "Offer", plainBody: "v1", verified: true });
    expect(d).toMatchObject({ id: expect.any(String), to: ["client@example.com"], subject: "Offer", plainBody: "v1" });
    expect((await ok(agent, "list_drafts", { inboxId: a.id })).drafts.map((x: Json) => x.id)).toEqual([d.id]);
    const updated = await ok(agent, "update_draft", { inboxId: a.id, draftId: d.id, plainBody: "v2", cc: "boss@example.com" });
    expect(updated).toMatchObject({ subject: "Offer", plainBody: "v2", cc: ["boss@example.com"], to: ["client@example.com"] });
    const read = await call(agent, "get_draft", { inboxId: a.id, draftId: d.id });
    expect(read.structuredContent).toMatchObject({ plainBody: "v2" });
    expect(textOf(read)).toContain("Cc: boss@example.com");

    const out = await ok(agent, "send_draft", { inboxId: a.id, draftId: d.id });
    expect(out).toMatchObject({ draftId: d.id, status: "sent", id: expect.any(String) });
    await fails(agent, "get_draft", { inboxId: a.id, draftId: d.id }, "NOT_FOUND");
    await waitFor(() => relay.received.some((m) => m.to.includes("client@example.com")), { timeoutMs: 10_000, what: "the relay gets the draft" });
    expect((await ok(agent, "get_message", { inboxId: a.id, messageId: out.id })).plainBody).toBe("v2");

    const other = await ok(agent, "create_draft", { inboxId: a.id, subject: "Never sent" });
    expect(await ok(agent, "delete_draft", { inboxId: a.id, draftId: other.id })).toEqual({ deleted: true, id: other.id });
    expect((await ok(agent, "list_drafts", { inboxId: a.id })).drafts).toEqual([]);
  });

  it("an API error is a tool error with its code and message, and the session goes on", async () => {
    const { a } = w();
    const missing = "0190a1a2-0000-7000-8000-000000000000";
    expect(await fails(agent, "get_message", { inboxId: a.id, messageId: missing }, "NOT_FOUND")).toMatch(/not found/i);
    expect(await fails(agent, "get_thread", { inboxId: a.id, threadId: missing }, "NOT_FOUND")).toMatch(/not found/i);
    const stranger = await fails(agent, "send_message", { inboxId: a.id, to: "stranger@example.com", subject: "Hi", plainBody: "x" }, "FORBIDDEN");
    expect(stranger).toContain("stranger@example.com never wrote to this inbox");
    await fails(
      agent,
      "send_draft",
      { inboxId: a.id, draftId: (await ok(agent, "create_draft", { inboxId: a.id, subject: "No one" })).id },
      "VALIDATION_ERROR",
    );
    // An argument the API's schema refuses is refused before any call, by the tool's input schema.
    const bad = await call(agent, "get_message", { inboxId: a.id, messageId: "not-a-uuid" });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toContain("must be a UUID");
    expect((await ok(agent, "list_inboxes")).inboxes).toHaveLength(1);
  });

  it("scope: another inbox of the tenant, and another tenant's inbox, answer as not found", async () => {
    const { a, b, c, s } = w();
    for (const other of [b, c]) {
      await fails(agent, "list_messages", { inboxId: other.id }, "NOT_FOUND");
      await fails(agent, "search_messages", { inboxId: other.id, query: "apples" }, "NOT_FOUND");
      await fails(agent, "send_message", { inboxId: other.id, to: a.email, subject: "Spoof", plainBody: "x", verified: true }, "NOT_FOUND");
      await fails(agent, "create_draft", { inboxId: other.id, subject: "x" }, "NOT_FOUND");
      // The view across inboxes narrows to what the key sees: another inbox is an empty view.
      expect((await ok(agent, "list_threads", { inboxId: other.id })).messages).toEqual([]);
    }
    // C's own message is not A's to read, even by its id.
    const cSent = await s.api("POST", `/v1/inboxes/${c.id}/send`, {
      key: c.apiKey,
      body: { to: "x@example.com", subject: "Private", plainBody: "p", verified: true },
    });
    expect(cSent.status).toBe(200);
    await fails(agent, "get_message", { inboxId: c.id, messageId: cSent.body.id }, "NOT_FOUND");
    await fails(agent, "get_message", { inboxId: a.id, messageId: cSent.body.id }, "NOT_FOUND");
    await fails(agent, "get_thread", { inboxId: c.id, threadId: cSent.body.threadId }, "NOT_FOUND");
  });

  it("no result and no log line shows a key", () => {
    expect(seen.length).toBeGreaterThan(30);
    const results = JSON.stringify(seen);
    const logs = w().s.logs.text();
    expect(logs.length).toBeGreaterThan(0);
    for (const key of w().keys) {
      expect(results.includes(key)).toBe(false);
      expect(logs.includes(key)).toBe(false);
    }
  });
}
