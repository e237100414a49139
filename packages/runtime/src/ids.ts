import { randomBytes } from "node:crypto";

export type IdGen = () => string;
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/** RFC 9562 UUIDv7: time-ordered, so ids sort by creation and index well. */
export function uuidv7(nowMs: number = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
