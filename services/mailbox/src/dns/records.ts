import { generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import type { MailboxConfig } from "../config.ts";

const generate = promisify(generateKeyPair);

export interface DkimKey {
  selector: string;
  privateKeyPem: string;
  /** base64 of the SPKI DER: the `p=` tag of the DKIM record. */
  publicKey: string;
}

export async function newDkimKey(selector: string): Promise<DkimKey> {
  const { privateKey, publicKey } = await generate("rsa", { modulusLength: 2048 });
  return {
    selector,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
  };
}

export const mxHost = (cfg: MailboxConfig) => cfg.MX_HOST ?? `mx.${cfg.MAIL_DOMAIN}`;
export const spfInclude = (cfg: MailboxConfig) => cfg.SPF_INCLUDE ?? `_spf.${cfg.MAIL_DOMAIN}`;

/** What a domain must publish for mail to reach us and to leave signed and aligned. */
export function expectedRecords(cfg: MailboxConfig, domain: string, key: { selector: string; publicKey: string }): DnsRecord[] {
  return [
    { type: "MX", purpose: "mx", name: domain, value: mxHost(cfg), priority: 10, status: "pending" },
    { type: "TXT", purpose: "spf", name: domain, value: `v=spf1 include:${spfInclude(cfg)} ~all`, priority: null, status: "pending" },
    {
      type: "TXT",
      purpose: "dkim",
      name: `${key.selector}._domainkey.${domain}`,
      value: `v=DKIM1; k=rsa; p=${key.publicKey}`,
      priority: null,
      status: "pending",
    },
    { type: "TXT", purpose: "dmarc", name: `_dmarc.${domain}`, value: "v=DMARC1; p=none", priority: null, status: "pending" },
  ];
}

/** MX, SPF and DKIM make a domain usable; DMARC is reported but only recommended. */
export const REQUIRED: DnsRecord["purpose"][] = ["mx", "spf", "dkim"];
