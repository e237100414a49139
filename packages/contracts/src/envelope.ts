import { z } from "zod";

/** Subject token standing for "no tenant" or "no workspace" (operator-level facts). */
export const NO_SCOPE_TOKEN = "_";

export const Actor = z.object({
  type: z.enum(["key", "system"]),
  id: z.string().nullable(),
});
export type Actor = z.infer<typeof Actor>;

/** The one envelope every event travels in. `id` is a UUIDv7 and doubles as `Nats-Msg-Id`. */
export const EventEnvelope = z.object({
  id: z.uuid(),
  type: z.string().min(1),
  schemaVersion: z.number().int().positive(),
  context: z.string().min(1),
  tenantId: z.uuid().nullable(),
  workspaceId: z.uuid().nullable(),
  aggregateId: z.uuid(),
  aggregateVersion: z.number().int().positive(),
  occurredAt: z.iso.datetime(),
  causationId: z.string().nullable(),
  correlationId: z.string().nullable(),
  actor: Actor,
  data: z.unknown(),
});
export type EventEnvelope<D = unknown> = Omit<z.infer<typeof EventEnvelope>, "data"> & { data: D };

/**
 * `evt.<context>.<tenantId>.<workspaceId>.<type>`: one wildcard taps a context
 * (`evt.identity.>`) or one workspace across contexts (`evt.*.<t>.<w>.>`).
 */
export function eventSubject(prefix: string, e: Pick<EventEnvelope, "context" | "tenantId" | "workspaceId" | "type">): string {
  return `${prefix}evt.${e.context}.${e.tenantId ?? NO_SCOPE_TOKEN}.${e.workspaceId ?? NO_SCOPE_TOKEN}.${e.type}`;
}

export const contextEventsFilter = (prefix: string, context: string) => `${prefix}evt.${context}.>`;
export const allEventsSubject = (prefix: string) => `${prefix}evt.>`;

/** Versioned payload schemas of one context, by event type then schema version. */
export type EventSchemas = Record<string, Record<number, z.ZodType>>;

/** Validates an envelope, then its payload against the schema registered for its type and version. */
export function parseEventWith<T>(schemas: EventSchemas, raw: unknown): T {
  const env = EventEnvelope.parse(raw);
  const schema = schemas[env.type]?.[env.schemaVersion];
  if (!schema) throw new z.ZodError([{ code: "custom", path: ["type"], message: `unknown event ${env.type} v${env.schemaVersion}`, input: env.type }]);
  return { ...env, data: schema.parse(env.data) } as T;
}
