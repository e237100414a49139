import { createHash } from "node:crypto";
import type { SMTPServerDataStream } from "smtp-server";
import type { BufferBudget, Reservation } from "./buffer-budget.ts";

/** The message data of one transaction, as the client sent it (dot-unstuffed), or why it was not kept. */
export type MessageData =
  | {
      outcome: "kept";
      /** The chunks as they arrived: joined once, where the message is recorded. */
      chunks: Buffer[];
      size: number;
      /** SHA-256 of the client's bytes, hex, computed as they arrived. */
      contentHash: string;
      /** The chunks' share of the buffer budget: to be released once the message is recorded or refused. */
      reservation: Reservation;
    }
  /** Over the message size limit: permanent, 552 5.3.4. */
  | { outcome: "too-big"; size: number }
  /** The buffer budget could not hold it now: temporary, 452 4.3.1. */
  | { outcome: "no-room"; size: number };

/**
 * Reads a DATA stream to its end. Bytes are held only while the message is within the size
 * limit and the budget can hold them; past either, what was held is dropped at once and the
 * rest is read and discarded (the client sends it all before it listens for the reply).
 */
export function readMessageData(stream: SMTPServerDataStream, maxBytes: number, budget: BufferBudget): Promise<MessageData> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const reservation = budget.reservation();
    let chunks: Buffer[] = [];
    let size = 0;
    let dropped = false;
    let noRoom = false;
    const drop = () => {
      dropped = true;
      chunks = [];
      reservation.release();
    };
    stream.on("data", (c: Buffer) => {
      size += c.length;
      if (dropped) return;
      if (size > maxBytes) return drop();
      if (!reservation.grow(c.length)) {
        noRoom = true;
        return drop();
      }
      chunks.push(c);
      hash.update(c);
    });
    stream.once("error", (err) => {
      drop();
      reject(err);
    });
    stream.once("end", () => {
      if (stream.sizeExceeded || size > maxBytes) {
        drop();
        return resolve({ outcome: "too-big", size });
      }
      if (noRoom) return resolve({ outcome: "no-room", size });
      resolve({ outcome: "kept", chunks, size, contentHash: hash.digest("hex"), reservation });
    });
  });
}
