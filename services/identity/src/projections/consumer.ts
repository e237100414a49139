import { ZodError } from "zod";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, parseIdentityEvent } from "@mam/contracts/identity-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { applyConsumed } from "@mam/service-kit/event-sourcing.ts";
import { startProjection } from "@mam/service-kit/projection.ts";
import type { IdentityContext } from "../context.ts";
import { applyIdentityEvent, PROJECTION } from "./identity-read-model.ts";

/** The durable consumer keeping identity's read model in step with the stream. */
export const IDENTITY_DURABLE = PROJECTION;

export function startIdentityProjection(ctx: IdentityContext, backbone: Backbone<any>) {
  return startProjection({
    backbone,
    projection: PROJECTION,
    filterSubject: contextEventsFilter(ctx.bus.prefix, IDENTITY_CONTEXT),
    isPoison: (err) => err instanceof ZodError,
    recent: ctx.recent,
    handle: async (msg) => {
      const event = parseIdentityEvent(msg.json());
      await applyConsumed(ctx.db, IDENTITY_CONTEXT, event, (tx) => applyIdentityEvent(tx, event, msg.seq));
    },
  });
}
