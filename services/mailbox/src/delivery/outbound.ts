import nodemailer, { type Transporter } from "nodemailer";
import type { Resolver } from "node:dns/promises";

export interface OutboundResult {
  delivered: string[];
  /** Refused for good (5xx): these become a bounce. */
  rejected: { recipients: string[]; reason: string }[];
}

/** A failure worth retrying later (connection refused, 4xx): the event is redelivered. */
export class TransientDeliveryError extends Error {
  override name = "TransientDeliveryError";
}

const isPermanent = (err: unknown) => {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === "number" && code >= 500;
};

/**
 * Sends the exact stored bytes: through SMTP_RELAY_URL when set, else straight to each
 * recipient domain's MX. What we store is what leaves.
 */
export class Outbound {
  private readonly relay?: Transporter;

  constructor(
    relayUrl: string | undefined,
    private readonly resolver: Resolver,
    private readonly heloName: string,
    private readonly mxPort = 25,
  ) {
    if (relayUrl) this.relay = nodemailer.createTransport(relayUrl);
  }

  async send(from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    if (this.relay) return this.through(this.relay, from, recipients, raw);
    const byDomain = new Map<string, string[]>();
    for (const r of recipients) {
      const d = r.split("@")[1]!;
      byDomain.set(d, [...(byDomain.get(d) ?? []), r]);
    }
    const out: OutboundResult = { delivered: [], rejected: [] };
    for (const [domain, rcpts] of byDomain) {
      const r = await this.toMx(domain, from, rcpts, raw);
      out.delivered.push(...r.delivered);
      out.rejected.push(...r.rejected);
    }
    return out;
  }

  private async through(t: Transporter, from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    try {
      const info = await t.sendMail({ envelope: { from, to: recipients }, raw });
      const rejected = (info.rejected as string[] | undefined) ?? [];
      return {
        delivered: recipients.filter((r) => !rejected.includes(r)),
        rejected: rejected.length ? [{ recipients: rejected, reason: String(info.response ?? "rejected") }] : [],
      };
    } catch (err) {
      if (isPermanent(err)) return { delivered: [], rejected: [{ recipients, reason: (err as Error).message }] };
      throw new TransientDeliveryError((err as Error).message);
    }
  }

  private async toMx(domain: string, from: string, recipients: string[], raw: Buffer): Promise<OutboundResult> {
    let hosts: string[];
    try {
      hosts = (await this.resolver.resolveMx(domain)).sort((a, b) => a.priority - b.priority).map((m) => m.exchange);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTFOUND" || code === "ENODATA") return { delivered: [], rejected: [{ recipients, reason: `no MX for ${domain}` }] };
      throw new TransientDeliveryError(`MX lookup for ${domain} failed: ${code}`);
    }
    let last: unknown;
    for (const host of hosts.length ? hosts : [domain]) {
      const t = nodemailer.createTransport({ host, port: this.mxPort, secure: false, name: this.heloName, connectionTimeout: 10_000 });
      try {
        return await this.through(t, from, recipients, raw);
      } catch (err) {
        last = err;
      } finally {
        t.close();
      }
    }
    throw last instanceof Error ? last : new TransientDeliveryError(`no MX of ${domain} answered`);
  }

  close(): void {
    this.relay?.close();
  }
}
