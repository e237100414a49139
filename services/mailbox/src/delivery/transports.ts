import { isIP } from "node:net";
import type SMTPPool from "nodemailer/lib/smtp-pool";
import type SMTPTransport from "nodemailer/lib/smtp-transport";

export type TlsMode = "verify" | "opportunistic" | "none";
const MODES: readonly TlsMode[] = ["verify", "opportunistic", "none"];

/** Bounded at every step: a tarpit cannot hold a try past the retry queue's lease. */
const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 60_000, socketTimeout: 3 * 60_000 } as const;

/**
 * Toward the relay, connections are kept open and reused, a few at a time: a new connection
 * (TCP, greeting, EHLO, STARTTLS, AUTH, QUIT) for every message would cost the relay and us
 * more than the message. A connection is replaced after this many messages.
 */
const RELAY_POOL = { pool: true, maxConnections: 8, maxMessages: 500 } as const;

export interface RelaySettings {
  options: SMTPPool.Options;
  mode: TlsMode;
  /** Where mail goes, for logs: no user, no password. */
  label: string;
  /** The URL's password, so that a server echoing it back never gets it into a log. */
  secret?: string;
}

/**
 * Transport options for SMTP_RELAY_URL under a TLS mode (`tls=` in the URL's query wins over
 * SMTP_RELAY_TLS). verify: implicit TLS for smtps://, else STARTTLS required; the
 * certificate checked either way. opportunistic: STARTTLS when offered, any certificate.
 * none: plain text, even if the server offers STARTTLS.
 */
export function relaySettings(relayUrl: string, envMode: TlsMode, heloName: string): RelaySettings {
  let url: URL;
  try {
    url = new URL(relayUrl);
  } catch {
    throw new Error("not a URL (smtp://user:pass@host:port or smtps://...)");
  }
  if (url.protocol !== "smtp:" && url.protocol !== "smtps:") throw new Error(`must be smtp:// or smtps://, not ${url.protocol}//`);
  const asked = url.searchParams.get("tls");
  if (asked !== null && !MODES.includes(asked as TlsMode)) throw new Error(`tls=${asked} is not one of ${MODES.join(", ")}`);
  const mode = (asked as TlsMode | null) ?? envMode;
  const implicit = url.protocol === "smtps:";
  if (implicit && mode === "none") throw new Error("smtps:// is TLS from the first byte; tls=none contradicts it");
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : implicit ? 465 : 587;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const auth = url.username ? { user: decodeURIComponent(url.username), pass: password ?? "" } : undefined;
  const tls =
    mode === "verify"
      ? { requireTLS: !implicit, tls: { rejectUnauthorized: true } }
      : mode === "opportunistic"
        ? { opportunisticTLS: true, tls: { rejectUnauthorized: false } }
        : { ignoreTLS: true };
  return {
    options: { host, port, secure: implicit, auth, name: heloName, ...tls, ...TIMEOUTS, ...RELAY_POOL },
    mode,
    label: `${url.protocol}//${url.host} (tls ${mode})`,
    secret: password || undefined,
  };
}

/**
 * Options toward one address of an MX host: we connect to the address we checked (no second
 * lookup for a rebinding DNS to answer differently), speak STARTTLS when offered and accept
 * any certificate, as MTAs do without MTA-STS or DANE; the host name goes in SNI.
 */
export function mxOptions(ip: string, mxHost: string, port: number, heloName: string, plain = false): SMTPTransport.Options {
  return {
    host: ip,
    port,
    secure: false,
    name: heloName,
    ...(isIP(mxHost) ? {} : { servername: mxHost }),
    ...(plain ? { ignoreTLS: true } : { opportunisticTLS: true, tls: { rejectUnauthorized: false } }),
    ...TIMEOUTS,
  };
}
