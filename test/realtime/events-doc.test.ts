import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { PUBLIC_EVENT_TYPES } from "@mam/contracts/realtime-feed.ts";
import { SOURCE_SEQ_HEADER } from "@mam/realtime/feed/catch-up.ts";
import { EVENT_CONTEXTS, EVENTS_DOC_DIR, eventSchemaDocs } from "../../scripts/event-schemas.ts";

const docsDir = join(EVENTS_DOC_DIR, "..");

/** docs/events.md and docs/events/: what consumers outside the platform read, kept with the contracts. */
describe("the events documentation", () => {
  const generated = eventSchemaDocs();

  it("has every JSON Schema the contracts make, none stale and none extra (pnpm events:schemas writes them)", async () => {
    const committed = (await readdir(EVENTS_DOC_DIR)).filter((f) => f.endsWith(".json")).sort();
    expect(committed, "missing or extra files: run pnpm events:schemas").toEqual([...generated.keys()].sort());
    for (const [name, schema] of generated) {
      const onDisk = JSON.parse(await readFile(join(EVENTS_DOC_DIR, name), "utf8"));
      expect(onDisk, `${name} is stale: run pnpm events:schemas`).toEqual(schema);
    }
  });

  it("one schema per event type and version, each a valid JSON Schema that accepts its own kind of event only", () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const count = Object.values(EVENT_CONTEXTS).reduce((n, schemas) => n + Object.values(schemas).reduce((m, v) => m + Object.keys(v).length, 0), 0);
    expect(generated.size).toBe(count + 2);
    const envelope = {
      id: "0190aaaa-0000-7000-8000-000000000001",
      schemaVersion: 1,
      tenantId: "0190aaaa-0000-7000-8000-000000000002",
      workspaceId: null,
      aggregateId: "0190aaaa-0000-7000-8000-000000000003",
      aggregateVersion: 1,
      occurredAt: "2026-12-01T10:00:00.000Z",
      causationId: null,
      correlationId: "req-1",
      actor: { type: "system", id: null },
    };
    const deleted = { ...envelope, context: "mailbox", type: "MessageDeleted", data: { messageId: envelope.aggregateId } };
    const check = (name: string) => ajv.compile(generated.get(name)!);
    expect(check("mailbox.MessageDeleted.v1.schema.json")(deleted)).toBe(true);
    // An unknown field (an optional one added within a version) is allowed.
    expect(check("mailbox.MessageDeleted.v1.schema.json")({ ...deleted, data: { ...deleted.data, later: 1 } })).toBe(true);
    expect(check("mailbox.MessageDeleted.v1.schema.json")({ ...deleted, type: "MessageFlagged" })).toBe(false);
    expect(check("mailbox.MessageDeleted.v1.schema.json")({ ...deleted, data: {} })).toBe(false);
    expect(check("envelope.schema.json")({ ...deleted, data: "anything" })).toBe(true);
    for (const name of generated.keys()) expect(() => check(name), name).not.toThrow();
  });

  it("docs/events.md names every event type, public event type and both streams", async () => {
    const doc = await readFile(join(docsDir, "events.md"), "utf8");
    const named = (s: string) => doc.includes(`\`${s}\``);
    for (const [context, schemas] of Object.entries(EVENT_CONTEXTS)) {
      expect(named(context), context).toBe(true);
      for (const type of Object.keys(schemas)) expect(named(type), `${context} ${type}`).toBe(true);
    }
    for (const type of PUBLIC_EVENT_TYPES) expect(named(type), type).toBe(true);
    for (const s of [
      "EVENTS",
      "FEED",
      "evt.<context>.<tenantId>.<workspaceId>.<type>",
      "rt.<tenantId>.<workspaceId>.<inboxId or _>.<eventType>",
      "schemaVersion",
      "Nats-Msg-Id",
      // The header a re-created renderer reads the feed's end by (see the renderer's catch-up).
      SOURCE_SEQ_HEADER,
    ]) {
      expect(named(s), s).toBe(true);
    }
  });
});
