import { parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";

/**
 * An id as the store keeps it. Postgres compares uuids whatever their case, the maps a
 * decision looks ids up in do not: an id in capitals finds its row as it did before.
 */
export const idParam = (raw: unknown, what: string): string => parseOrThrow(IdParam, raw, what).toLowerCase();
