import type { Kysely } from "kysely";
import type { MailboxDb } from "../db/schema.ts";
import { newDkimKey } from "../dns/records.ts";

const PLATFORM = "platform";

/** The platform domain's DKIM key: created once by whichever replica starts first. */
export async function ensurePlatformKey(db: Kysely<MailboxDb>, selector: string, now: Date) {
  const existing = await db.selectFrom("dkim_keys").selectAll().where("key_ref", "=", PLATFORM).executeTakeFirst();
  if (existing) return existing;
  const key = await newDkimKey(selector);
  await db
    .insertInto("dkim_keys")
    .values({ key_ref: PLATFORM, selector: key.selector, private_key_pem: key.privateKeyPem, public_key: key.publicKey, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .execute();
  return db.selectFrom("dkim_keys").selectAll().where("key_ref", "=", PLATFORM).executeTakeFirstOrThrow();
}
