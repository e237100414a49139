/** How a failing delivery is retried. */
export interface RetryPolicy {
  baseMs: number;
  maxDelayMs: number;
  /** Retries go on this long after the first attempt. */
  windowMs: number;
}

export type NextStep = { kind: "retry"; at: Date; delayMs: number } | { kind: "give-up" };

/**
 * Decorrelated jitter: each delay is drawn between the base and three times the one before,
 * capped. Deliveries that failed together (an endpoint down for a while) spread out instead
 * of coming back in step, and the delays still grow about exponentially.
 */
export function nextDelayMs(prevMs: number | null, p: RetryPolicy, random: () => number = Math.random): number {
  const base = Math.min(p.baseMs, p.maxDelayMs);
  const upper = Math.min(p.maxDelayMs, Math.max(base, (prevMs ?? base) * 3));
  return Math.round(base + random() * (upper - base));
}

/**
 * What follows a failed attempt: another one, never later than the end of the window, or
 * giving up once an attempt made at or after the window's end has failed too. So the last
 * try is never before the window ends, however long the one before it took.
 */
export function afterFailure(
  o: { firstAttemptAt: Date; startedAt: Date; now: Date; prevDelayMs: number | null },
  p: RetryPolicy,
  random?: () => number,
): NextStep {
  const end = o.firstAttemptAt.getTime() + p.windowMs;
  if (o.startedAt.getTime() >= end) return { kind: "give-up" };
  const delayMs = nextDelayMs(o.prevDelayMs, p, random);
  const now = o.now.getTime();
  return { kind: "retry", at: new Date(now >= end ? now : Math.min(now + delayMs, end)), delayMs };
}
