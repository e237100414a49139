import { describe, expect, it } from "vitest";
import type { MailboxEnvelope, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { delivered, ids, owner, received, sent } from "../commands/message-fixtures.ts";
import { settledAtSend } from "./settled-at-send.ts";

const inEnvelopes = (...events: MailboxEvent[]) =>
  events.map((e, i) => ({ ...e, id: `${ids.event}-${i}`, context: "mailbox", ...owner }) as unknown as MailboxEnvelope);

/** Which sent messages of a commit leave the delivery worker nothing to do. */
describe("settledAtSend", () => {
  it("a send whose every recipient (to, cc, bcc, any case) was delivered in the same commit", () => {
    const send = sent({ to: ["Bob@Example.test"], cc: ["carol@example.test"], bcc: ["dan@example.test"] });
    const commit = inEnvelopes(
      send,
      received({ messageId: ids.newMessage }),
      delivered(ids.sent, ["bob@example.test", "carol@example.test", "dan@example.test"]),
    );
    expect(settledAtSend(commit)).toEqual([ids.sent]);
  });

  it("not when a recipient is left to the worker, nor when the delivery is another message's", () => {
    const send = sent({ to: ["bob@example.test", "world@elsewhere.test"] });
    expect(settledAtSend(inEnvelopes(send, delivered(ids.sent, ["bob@example.test"])))).toEqual([]);
    expect(settledAtSend(inEnvelopes(sent({ to: ["bob@example.test"] }), delivered(ids.newMessage, ["bob@example.test"])))).toEqual([]);
    expect(settledAtSend(inEnvelopes(sent()))).toEqual([]);
  });

  it("each send of a group-committed batch on its own", () => {
    const other = "0190aaaa-0000-7000-8000-0000000000e9";
    const commit = inEnvelopes(
      sent({ to: ["bob@example.test"] }),
      delivered(ids.sent, ["bob@example.test"]),
      sent({ messageId: other, to: ["bob@example.test", "world@elsewhere.test"] }),
      delivered(other, ["bob@example.test"]),
    );
    expect(settledAtSend(commit)).toEqual([ids.sent]);
  });
});
