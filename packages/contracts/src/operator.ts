import { z } from "zod";

/**
 * The operator's requests over NATS (`mam`, the CLI), as the services serve them
 * (packages/service-kit/src/operator-rpc.ts) and the CLI asks them: one definition for both.
 */

/** An operator request's subject: `svc.<service>.ops.<...>`. */
export const operatorSubject = (service: string, ...parts: string[]) => `svc.${service}.ops.${parts.join(".")}`;

/** A projection's rebuild requests, served by the replica holding its lease (packages/service-kit/src/rebuild.ts). */
export const rebuildSubject = (service: string, projection: string) => operatorSubject(service, "rebuild", projection);

export const RebuildRequest = z.object({ action: z.enum(["start", "progress"]) });

/** What a rebuild request answers: where the replay is. */
export const RebuildProgress = z.object({
  projection: z.string(),
  /** A rebuild started and has not caught up yet: reads may be partial, commands are refused. */
  rebuilding: z.boolean(),
  startedAt: z.string().nullable(),
  /** The stream's last sequence when the rebuild started. */
  targetSeq: z.number().int(),
  /** The stream sequence up to which every event of the projection has been applied (the consumer's ack floor). */
  appliedSeq: z.number().int(),
  /** Events of the projection not delivered yet, and delivered but not acknowledged. */
  pending: z.number().int(),
  ackPending: z.number().int(),
  redelivered: z.number().int(),
});
export type RebuildProgress = z.infer<typeof RebuildProgress>;
