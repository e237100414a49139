import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, parseIdentityEvent } from "@mam/contracts/identity-events.ts";
import type { IdentityContext } from "../context.ts";
import { applyIdentityEvent } from "./identity-read-model.ts";

export const IDENTITY_DURABLE = "identity-read-model";

/** Keeps identity's read model in step with the stream, whoever appended the events. */
export function identityConsumer(ctx: IdentityContext, stream: string): DurableConsumer {
  return new DurableConsumer({
    bus: ctx.bus,
    stream,
    durable: IDENTITY_DURABLE,
    filterSubject: contextEventsFilter(ctx.bus.prefix, IDENTITY_CONTEXT),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      const event = parseIdentityEvent(msg.json());
      await ctx.db.transaction().execute((tx) => applyIdentityEvent(tx, event, msg.seq));
    },
  });
}
