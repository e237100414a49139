/** At most this many ids kept of a References chain. */
export const MAX_REFERENCES = 50;

/**
 * A References chain cut to MAX_REFERENCES: its first id (the thread's start, which clients
 * thread by) and the latest ones (RFC 5322 3.6.4 leaves which to drop to the writer).
 */
export function keptReferences(chain: string[]): string[] {
  return chain.length <= MAX_REFERENCES ? chain : [chain[0]!, ...chain.slice(-(MAX_REFERENCES - 1))];
}
