/**
 * JSON Schemas of everything the NATS streams carry, for consumers outside the project,
 * generated from the zod schemas in packages/contracts (the single source of truth):
 *
 *   docs/events/envelope.schema.json                      the envelope every domain event travels in
 *   docs/events/<context>.<Type>.v<N>.schema.json         one domain event type at one schema version
 *   docs/events/feed-event.schema.json                    an entry of the public feed
 *
 *   pnpm events:schemas        writes them (and removes any the contracts no longer have)
 *
 * The output depends on the contracts alone: test/realtime/events-doc.test.ts regenerates
 * it in memory and fails when a committed file is missing, stale or extra.
 */
import { spawnSync } from "node:child_process";
import { mkdir, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { BILLING_CONTEXT, billingEventSchemas } from "@mam/contracts/billing-events.ts";
import { EventEnvelope, type EventSchemas } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, identityEventSchemas } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, mailboxEventSchemas } from "@mam/contracts/mailbox-events.ts";
import { REALTIME_CONTEXT, realtimeEventSchemas } from "@mam/contracts/realtime-events.ts";
import { FeedEvent } from "@mam/contracts/realtime-feed.ts";

export const EVENTS_DOC_DIR = fileURLToPath(new URL("../docs/events/", import.meta.url));

/** Every context's event schemas, by context. */
export const EVENT_CONTEXTS: Record<string, EventSchemas> = {
  [IDENTITY_CONTEXT]: identityEventSchemas,
  [MAILBOX_CONTEXT]: mailboxEventSchemas,
  [REALTIME_CONTEXT]: realtimeEventSchemas,
  [BILLING_CONTEXT]: billingEventSchemas,
};

/** One event type at one version: its envelope with `context`, `type` and `schemaVersion` fixed, and its payload as `data`. */
function eventSchema(context: string, type: string, version: number, data: z.ZodType) {
  return EventEnvelope.extend({ context: z.literal(context), type: z.literal(type), schemaVersion: z.literal(version), data });
}

function jsonSchema(schema: z.ZodType, title: string, description: string): Record<string, unknown> {
  const s = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    // What a consumer reads off the stream (defaults applied, no input-only forms).
    io: "output",
    unrepresentable: "throw",
    // A field added to a payload without a new schemaVersion (only ever an optional one) must
    // not fail a consumer's validation: unknown fields are allowed, and to be ignored.
    override: (ctx) => {
      if (ctx.jsonSchema.additionalProperties === false) delete ctx.jsonSchema.additionalProperties;
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = s;
  return { $schema, title, description, ...rest };
}

/** File name → its schema, in a stable order. */
export function eventSchemaDocs(): Map<string, Record<string, unknown>> {
  const docs = new Map<string, Record<string, unknown>>();
  docs.set("envelope.schema.json", jsonSchema(EventEnvelope, "Event envelope", "The envelope every domain event travels in on the EVENTS stream."));
  for (const [context, schemas] of Object.entries(EVENT_CONTEXTS)) {
    for (const [type, versions] of Object.entries(schemas)) {
      for (const [version, data] of Object.entries(versions)) {
        const v = Number(version);
        docs.set(
          `${context}.${type}.v${v}.schema.json`,
          jsonSchema(
            eventSchema(context, type, v, data),
            `${type} v${v}`,
            `The ${context} context's ${type} event at schemaVersion ${v}, on evt.${context}.<tenantId>.<workspaceId>.${type}.`,
          ),
        );
      }
    }
  }
  docs.set(
    "feed-event.schema.json",
    jsonSchema(FeedEvent, "Feed event", "An entry of the FEED stream, on rt.<tenantId>.<workspaceId>.<inboxId or _>.<eventType>; its Nats-Msg-Id is eventId."),
  );
  return docs;
}

/** Writes every schema (formatted as the repository formats JSON) and removes stale ones. */
export async function writeEventSchemas(dir = EVENTS_DOC_DIR): Promise<string[]> {
  const docs = eventSchemaDocs();
  await mkdir(dir, { recursive: true });
  for (const name of (await readdir(dir)).filter((f) => f.endsWith(".schema.json") && !docs.has(f))) await unlink(join(dir, name));
  for (const [name, schema] of docs) await writeFile(join(dir, name), `${JSON.stringify(schema, null, 2)}\n`);
  const biome = fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url));
  const r = spawnSync(biome, ["format", "--write", dir], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`biome format failed on ${dir}`);
  return [...docs.keys()];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const written = await writeEventSchemas();
  process.stdout.write(`${written.length} JSON Schemas in ${EVENTS_DOC_DIR}\n`);
}
