import { isIP } from "node:net";
import type { Resolver } from "node:dns/promises";
import nodemailer, { type Transporter } from "nodemailer";
import { isSpecialUse } from "@mam/runtime/special-use.ts";
import { mxOptions, relaySettings, type RelaySettings, type TlsMode } from "./transports.ts";

export interface Refusal {
  recipients: string[];
  reason: string;
}

/** What became of each recipient of one try. */
export interface OutboundResult {
  delivered: string[];
  /** Refused for good (5xx): these become a bounce. */
  rejected: Refusal[];
  /** Refused for now (4xx, greylisting) or not reached: tried again later. */
  deferred: Refusal[];
}

interface RecipientError {
  recipient?: string;
  responseCode?: number;
  response?: string;
  message: string;
}

export interface OutboundOptions {
  /** SMTP_RELAY_URL: every message goes there when set. */
  relayUrl?: string;
  relayTls: TlsMode;
  resolver: Resolver;
  heloName: string;
  mxPort?: number;
  /** OUTBOUND_ALLOW_PRIVATE: MX hosts may be on private and other special-use addresses. */
  allowPrivate?: boolean;
}

/** Addresses of all MX hosts of one domain tried in one go, at most. */
const MAX_MX_TARGETS = 10;

const isPermanent = (err: unknown) => {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === "number" && code >= 500;
};

/** Splits per-recipient refusals (RCPT replies) into the permanent and the temporary ones. */
function sortRefusals(errors: RecipientError[], where: string): { rejected: Refusal[]; deferred: Refusal[] } {
  const rejected: Refusal[] = [];
  const deferred: Refusal[] = [];
  for (const e of errors) {
    if (!e.recipient) continue;
    (isPermanent(e) ? rejected : deferred).push({ recipients: [e.recipient], reason: `${where}: ${e.response ?? e.message}` });
  }
  return { rejected, deferred };
}

const merge = (into: OutboundResult, r: OutboundResult) => {
  into.delivered.push(...r.delivered);
  into.rejected.push(...r.rejected);
  into.deferred.push(...r.deferred);
};

type Try = OutboundResult & { tlsFailed?: boolean };

/**
 * Sends the exact stored bytes: through SMTP_RELAY_URL when set, else straight to each
 * recipient domain's MX. What we store is what leaves. Never throws for a recipient:
 * each one ends delivered, rejected or deferred, so a retry sends only to the deferred.
 * Every reason says where it came from, and never holds the relay's password.
 */
export class Outbound {
  private readonly relay?: { transport: Transporter; settings: RelaySettings };
  private readonly mxPort: number;

  constructor(private readonly o: OutboundOptions) {
    this.mxPort = o.mxPort ?? 25;
    if (o.relayUrl) {
      const settings = relaySettings(o.relayUrl, o.relayTls, o.heloName);
      this.relay = { transport: nodemailer.createTransport(settings.options), settings };
    }
  }

  /** How mail leaves: "relay" or "mx". */
  get via(): "relay" | "mx" {
    return this.relay ? "relay" : "mx";
  }

  async send(returnPath: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    if (this.relay) return this.redacted(await this.through(this.relay.transport, this.relay.settings.label, returnPath, recipients, raw));
    const byDomain = new Map<string, string[]>();
    for (const r of recipients) {
      const d = r.split("@")[1]!.toLowerCase();
      byDomain.set(d, [...(byDomain.get(d) ?? []), r]);
    }
    const out: OutboundResult = { delivered: [], rejected: [], deferred: [] };
    for (const [domain, rcpts] of byDomain) merge(out, await this.toMx(domain, returnPath, rcpts, raw));
    return out;
  }

  private redacted(r: OutboundResult): OutboundResult {
    const secret = this.relay?.settings.secret;
    if (!secret) return r;
    const clean = (f: Refusal) => ({ ...f, reason: f.reason.split(secret).join("***") });
    return { delivered: r.delivered, rejected: r.rejected.map(clean), deferred: r.deferred.map(clean) };
  }

  private async through(t: Transporter, where: string, from: string, recipients: string[], raw: Buffer): Promise<Try> {
    try {
      const info = await t.sendMail({ envelope: { from, to: recipients }, raw });
      const refused = sortRefusals((info as { rejectedErrors?: RecipientError[] }).rejectedErrors ?? [], where);
      const unsent = new Set([...refused.rejected, ...refused.deferred].flatMap((r) => r.recipients));
      return { delivered: recipients.filter((r) => !unsent.has(r)), ...refused };
    } catch (err) {
      // Every recipient refused at RCPT: each for its own reason.
      const perRecipient = (err as { rejectedErrors?: RecipientError[] }).rejectedErrors;
      if (perRecipient?.length) return { delivered: [], ...sortRefusals(perRecipient, where) };
      const refusal = [{ recipients, reason: `${where}: ${(err as Error).message}` }];
      if (isPermanent(err)) return { delivered: [], rejected: refusal, deferred: [] };
      return { delivered: [], rejected: [], deferred: refusal, tlsFailed: (err as { code?: string }).code === "ETLS" };
    }
  }

  /** The domain's mail hosts, best first: its MX records, or the domain itself without any (RFC 5321 5.1). */
  private async mxHosts(domain: string): Promise<string[] | "null MX"> {
    try {
      const mx = await this.o.resolver.resolveMx(domain);
      // RFC 7505: a single MX of "." says the domain accepts no mail at all.
      if (mx.length === 1 && (mx[0]!.exchange === "" || mx[0]!.exchange === ".")) return "null MX";
      return mx.sort((a, b) => a.priority - b.priority).map((m) => m.exchange);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENODATA") return [domain];
      throw err;
    }
  }

  /** The host's addresses, IPv4 first; an error only when no lookup answered at all. */
  private async addressesOf(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const answers = await Promise.allSettled([this.o.resolver.resolve4(host), this.o.resolver.resolve6(host)]);
    const found = answers.flatMap((a) => (a.status === "fulfilled" ? a.value : []));
    const failed = answers.filter((a) => a.status === "rejected").map((a) => (a.reason as NodeJS.ErrnoException).code);
    if (!found.length && failed.some((c) => c !== "ENODATA" && c !== "ENOTFOUND"))
      throw Object.assign(new Error(`lookup of ${host} failed`), { code: failed[0] });
    return found;
  }

  private async toMx(domain: string, from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    const none = (reason: string, permanent: boolean): OutboundResult =>
      permanent ? { delivered: [], rejected: [{ recipients, reason }], deferred: [] } : { delivered: [], rejected: [], deferred: [{ recipients, reason }] };
    let hosts: string[];
    try {
      const found = await this.mxHosts(domain);
      if (found === "null MX") return none(`${domain} accepts no mail (null MX)`, true);
      hosts = found;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTFOUND") return none(`no such domain: ${domain}`, true);
      return none(`MX lookup for ${domain} failed: ${code}`, false);
    }
    // Where to connect, checked before connecting: the same addresses are then used as they are.
    const targets: { host: string; ip: string }[] = [];
    const refused: string[] = [];
    const unresolved: string[] = [];
    for (const host of hosts) {
      if (targets.length >= MAX_MX_TARGETS) break;
      let ips: string[];
      try {
        ips = await this.addressesOf(host);
      } catch (err) {
        unresolved.push(`${host} (${(err as NodeJS.ErrnoException).code})`);
        continue;
      }
      if (!ips.length) unresolved.push(`${host} (no address)`);
      for (const ip of ips) {
        if (!this.o.allowPrivate && isSpecialUse(ip)) refused.push(host === ip ? ip : `${host} [${ip}]`);
        else targets.push({ host, ip });
      }
    }
    if (!targets.length) {
      // Private addresses are a property of the domain's DNS, not a passing failure: say so now.
      if (refused.length && !unresolved.length) {
        return none(`MX of ${domain} has only private or special-use addresses (${refused.join(", ")}); direct delivery does not connect to them`, true);
      }
      return none(`no reachable MX address for ${domain}: ${[...unresolved, ...refused.map((r) => `${r} private`)].join(", ")}`, false);
    }
    // Each next address is offered only what the ones before left deferred.
    const out: OutboundResult = { delivered: [], rejected: [], deferred: [] };
    let pending = recipients;
    for (const { host, ip } of targets.slice(0, MAX_MX_TARGETS)) {
      let r = await this.once(ip, host, from, pending, raw, false);
      // A STARTTLS that fails its handshake: MTAs try the same host again in plain text.
      if (r.tlsFailed) r = await this.once(ip, host, from, pending, raw, true);
      out.delivered.push(...r.delivered);
      out.rejected.push(...r.rejected);
      out.deferred = r.deferred;
      pending = r.deferred.flatMap((d) => d.recipients);
      if (!pending.length) break;
    }
    return out;
  }

  private async once(ip: string, host: string, from: string, recipients: string[], raw: Buffer, plain: boolean): Promise<Try> {
    const t = nodemailer.createTransport(mxOptions(ip, host, this.mxPort, this.o.heloName, plain));
    try {
      return await this.through(t, host === ip ? `MX ${host}` : `MX ${host} [${ip}]`, from, recipients, raw);
    } finally {
      t.close();
    }
  }

  close(): void {
    this.relay?.transport.close();
  }
}
