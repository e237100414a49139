import type { NextFunction, Request, Response } from "express";

/** Bodies above this are "large": buffered several times over and handed over through the bus's bucket. */
export const LARGE_BODY_BYTES = 1024 * 1024;

/**
 * How many large request bodies may be in flight, in all and per key: a gateway holds each
 * several times in memory, and one client must not crowd everyone else out of the bucket
 * that carries them.
 */
export class LargeBodies {
  private total = 0;
  private readonly byKey = new Map<string, number>();

  constructor(
    readonly maxTotal: number,
    readonly maxPerKey: number,
  ) {}

  tryAcquire(key: string): boolean {
    const mine = this.byKey.get(key) ?? 0;
    if (this.total >= this.maxTotal || mine >= this.maxPerKey) return false;
    this.total++;
    this.byKey.set(key, mine + 1);
    return true;
  }

  release(key: string): void {
    const mine = (this.byKey.get(key) ?? 1) - 1;
    if (mine <= 0) this.byKey.delete(key);
    else this.byKey.set(key, mine);
    this.total = Math.max(0, this.total - 1);
  }

  get inFlight(): number {
    return this.total;
  }
}

/**
 * Admits a large body only while there is room (else 429 with Retry-After), and frees the
 * room when the response is over, however it ends. A body of unknown length counts as large.
 */
export function admitLargeBodies(limits: LargeBodies, keyOf: (res: Response) => string, refuse: (res: Response) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = req.get("content-length");
    const large = declared !== undefined ? Number(declared) > LARGE_BODY_BYTES : req.get("transfer-encoding") !== undefined;
    if (!large) return next();
    const key = keyOf(res);
    if (!limits.tryAcquire(key)) return refuse(res);
    res.once("close", () => limits.release(key));
    next();
  };
}
