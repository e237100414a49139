import nodemailer, { type Transporter } from "nodemailer";
import type { Resolver } from "node:dns/promises";

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

const isPermanent = (err: unknown) => {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === "number" && code >= 500;
};

/** Splits per-recipient refusals (RCPT replies) into the permanent and the temporary ones. */
function sortRefusals(errors: RecipientError[]): { rejected: Refusal[]; deferred: Refusal[] } {
  const rejected: Refusal[] = [];
  const deferred: Refusal[] = [];
  for (const e of errors) {
    if (!e.recipient) continue;
    (isPermanent(e) ? rejected : deferred).push({ recipients: [e.recipient], reason: e.response ?? e.message });
  }
  return { rejected, deferred };
}

/**
 * Sends the exact stored bytes: through SMTP_RELAY_URL when set, else straight to each
 * recipient domain's MX. What we store is what leaves. Never throws for a recipient:
 * each one ends delivered, rejected or deferred, so a retry sends only to the deferred.
 */
export class Outbound {
  private readonly relay?: Transporter;

  constructor(
    relayUrl: string | undefined,
    private readonly resolver: Resolver,
    private readonly heloName: string,
    private readonly mxPort = 25,
  ) {
    // The same bounds as toward an MX (the URL may set its own).
    if (relayUrl) this.relay = nodemailer.createTransport({ url: relayUrl, connectionTimeout: 10_000, greetingTimeout: 60_000, socketTimeout: 3 * 60_000 });
  }

  async send(from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    if (this.relay) return this.through(this.relay, from, recipients, raw);
    const byDomain = new Map<string, string[]>();
    for (const r of recipients) {
      const d = r.split("@")[1]!;
      byDomain.set(d, [...(byDomain.get(d) ?? []), r]);
    }
    const out: OutboundResult = { delivered: [], rejected: [], deferred: [] };
    for (const [domain, rcpts] of byDomain) {
      const r = await this.toMx(domain, from, rcpts, raw);
      out.delivered.push(...r.delivered);
      out.rejected.push(...r.rejected);
      out.deferred.push(...r.deferred);
    }
    return out;
  }

  private async through(t: Transporter, from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    try {
      const info = await t.sendMail({ envelope: { from, to: recipients }, raw });
      const refused = sortRefusals((info as { rejectedErrors?: RecipientError[] }).rejectedErrors ?? []);
      const unsent = new Set([...refused.rejected, ...refused.deferred].flatMap((r) => r.recipients));
      return { delivered: recipients.filter((r) => !unsent.has(r)), ...refused };
    } catch (err) {
      // Every recipient refused at RCPT: each for its own reason.
      const perRecipient = (err as { rejectedErrors?: RecipientError[] }).rejectedErrors;
      if (perRecipient?.length) return { delivered: [], ...sortRefusals(perRecipient) };
      const refusal = [{ recipients, reason: (err as Error).message }];
      return isPermanent(err) ? { delivered: [], rejected: refusal, deferred: [] } : { delivered: [], rejected: [], deferred: refusal };
    }
  }

  private async toMx(domain: string, from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    let hosts: string[];
    try {
      const mx = await this.resolver.resolveMx(domain);
      // RFC 7505: a single MX of "." says the domain accepts no mail at all.
      if (mx.length === 1 && (mx[0]!.exchange === "" || mx[0]!.exchange === ".")) {
        return { delivered: [], rejected: [{ recipients, reason: `${domain} accepts no mail (null MX)` }], deferred: [] };
      }
      hosts = mx.sort((a, b) => a.priority - b.priority).map((m) => m.exchange);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTFOUND") return { delivered: [], rejected: [{ recipients, reason: `no such domain: ${domain}` }], deferred: [] };
      // RFC 5321 5.1: a domain without MX records is its own mail host (its A/AAAA records).
      if (code === "ENODATA") hosts = [domain];
      else return { delivered: [], rejected: [], deferred: [{ recipients, reason: `MX lookup for ${domain} failed: ${code}` }] };
    }
    // Each next MX is offered only what the ones before left deferred.
    const out: OutboundResult = { delivered: [], rejected: [], deferred: [] };
    let pending = recipients;
    for (const host of hosts) {
      // Bounded at every step (a tarpit cannot hold a try past the retry queue's lease).
      const t = nodemailer.createTransport({
        host,
        port: this.mxPort,
        secure: false,
        name: this.heloName,
        connectionTimeout: 10_000,
        greetingTimeout: 60_000,
        socketTimeout: 3 * 60_000,
      });
      try {
        const r = await this.through(t, from, pending, raw);
        out.delivered.push(...r.delivered);
        out.rejected.push(...r.rejected);
        out.deferred = r.deferred;
        pending = r.deferred.flatMap((d) => d.recipients);
      } finally {
        t.close();
      }
      if (!pending.length) break;
    }
    return out;
  }

  close(): void {
    this.relay?.close();
  }
}
