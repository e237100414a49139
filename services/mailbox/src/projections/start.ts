import { ZodError } from "zod";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { applyConsumed } from "@mam/service-kit/event-sourcing.ts";
import { startProjection } from "@mam/service-kit/projection.ts";
import type { MailboxContext } from "../context.ts";
import { applyMailboxEvent, PROJECTION } from "./mailbox-read-model.ts";

/** The durable consumer keeping the mailbox's read model in step with its events. */
export function startMailboxProjection(ctx: MailboxContext, backbone: Backbone<any>) {
  return startProjection({
    backbone,
    projection: PROJECTION,
    filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
    isPoison: (err) => err instanceof ZodError,
    recent: ctx.recent,
    handle: async (msg) => {
      const event = parseMailboxEvent(msg.json());
      await applyConsumed(ctx.db, MAILBOX_CONTEXT, event, (tx) => applyMailboxEvent(tx, event, msg.seq));
    },
  });
}
