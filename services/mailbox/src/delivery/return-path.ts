import { createHmac, timingSafeEqual } from "node:crypto";
import { BOUNCE_LOCAL_PREFIX, BOUNCE_TOKEN } from "@mam/contracts/ingest.ts";
import { ensurePlatformKey } from "../commands/platform-domain.ts";
import type { MailboxContext } from "../context.ts";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** 16 bytes of message id and 10 of MAC: 42 base32 characters, 50 with the prefix (a local part holds 64). */
const MAC_BYTES = 10;
const TOKEN_BYTES = 16 + MAC_BYTES;

export function base32(bytes: Buffer): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Buffer | null {
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const c of text) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

const mac = (secret: Buffer, id: Buffer) => createHmac("sha256", secret).update("mam return path\u0000").update(id).digest().subarray(0, MAC_BYTES);

const uuidBytes = (id: string) => Buffer.from(id.replace(/-/g, ""), "hex");
const uuidOf = (b: Buffer) => {
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/**
 * Return paths of outgoing mail: `bounces+<token>@MAIL_DOMAIN`, where the token is the
 * message's id and a MAC of it. A bounce names the message it is about only through a token
 * we made: nobody else can make one, and one token names one message.
 */
export class ReturnPaths {
  constructor(
    private readonly secret: Buffer,
    private readonly mailDomain: string,
  ) {}

  token(messageId: string): string {
    const id = uuidBytes(messageId);
    return base32(Buffer.concat([id, mac(this.secret, id)]));
  }

  address(messageId: string): string {
    return `${BOUNCE_LOCAL_PREFIX}${this.token(messageId)}@${this.mailDomain}`;
  }

  /** The message id the token names, or null for a token we did not make. */
  messageOf(token: string): string | null {
    if (!BOUNCE_TOKEN.test(token)) return null;
    const bytes = unbase32(token);
    if (!bytes || bytes.length !== TOKEN_BYTES || base32(bytes) !== token) return null;
    const id = bytes.subarray(0, 16);
    // Both sides are MAC_BYTES long: the comparison is constant-time and leaks no length.
    return timingSafeEqual(bytes.subarray(16), mac(this.secret, id)) ? uuidOf(id) : null;
  }
}

const opened = new WeakMap<MailboxContext, Promise<ReturnPaths>>();

/**
 * The service's return paths. Their key is BOUNCE_SECRET, or else derived from the platform
 * DKIM key: kept in the database, so every replica has the same one and a restart keeps it,
 * and a bounce arriving days later still verifies.
 */
export function returnPaths(ctx: MailboxContext): Promise<ReturnPaths> {
  let p = opened.get(ctx);
  if (!p) {
    p = (async () => {
      const cfg = ctx.cfg;
      if (cfg.BOUNCE_SECRET) return new ReturnPaths(Buffer.from(cfg.BOUNCE_SECRET), cfg.MAIL_DOMAIN);
      const key = await ensurePlatformKey(ctx.db, cfg.DKIM_SELECTOR, ctx.clock());
      return new ReturnPaths(createHmac("sha256", key.private_key_pem).update("mam return-path key v1").digest(), cfg.MAIL_DOMAIN);
    })();
    p.catch(() => opened.delete(ctx));
    opened.set(ctx, p);
  }
  return p;
}
