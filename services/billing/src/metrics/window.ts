import { z } from "zod";
import { AppError } from "@mam/contracts/errors.ts";

/** The longest window a metrics query may span. */
export const MAX_WINDOW_DAYS = 400;
/** The window when none is given: the last 30 days. */
export const DEFAULT_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;

const Iso = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

const invalid = (field: string, message: string) => new AppError("VALIDATION_ERROR", `Invalid query: ${field}: ${message}`, [{ path: field, message }]);

/**
 * A window bound: ISO-8601 (a date-time with `Z` or an offset, or a date), or an epoch in
 * seconds, or in milliseconds when it has 12 digits or more.
 */
export function parseInstant(field: string, raw: string): Date {
  let ms: number;
  if (/^\d{1,16}$/.test(raw)) ms = raw.length >= 12 ? Number(raw) : Number(raw) * 1000;
  else if (Iso.safeParse(raw).success) ms = Date.parse(raw);
  else throw invalid(field, "must be ISO-8601, epoch seconds or epoch milliseconds");
  // Outside what a Date holds, or before the epoch: nothing was ever counted there.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw invalid(field, "is out of range");
  return new Date(ms);
}

/** `[from, to)`, defaulting to the last 30 days before `now`; at most 400 days long. */
export function resolveWindow(q: { from?: string; to?: string }, now: Date): { from: Date; to: Date } {
  const to = q.to === undefined ? now : parseInstant("to", q.to);
  const from = q.from === undefined ? new Date(to.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS) : parseInstant("from", q.from);
  if (from.getTime() > to.getTime()) throw invalid("from", "must not be after to");
  if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY_MS) throw invalid("from", `the window may span at most ${MAX_WINDOW_DAYS} days`);
  return { from, to };
}
