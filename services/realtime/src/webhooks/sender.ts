import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Resolver } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { isSpecialUse } from "@mam/runtime/special-use.ts";
import { literalAddressOf } from "./url-policy.ts";

/** A receiver's answer is read up to this many bytes, then the connection is dropped. */
export const RESPONSE_READ_CAP = 64 * 1024;
/** Of a refusal's body, this much is kept for the delivery log. */
export const ERROR_TEXT_CAP = 1024;
export const USER_AGENT = "agentmail-platform-webhooks/1.0";
/** How long a kept-alive socket may stay idle. */
const IDLE_SOCKET_MS = 4_000;

export interface AttemptResult {
  /** The receiver's status; null when no response came (refused, timed out, blocked). */
  statusCode: number | null;
  latencyMs: number;
  success: boolean;
  error: string | null;
}

/** Every address of a host name. */
export type Resolve = (hostname: string, family: number) => Promise<LookupAddress[]>;

/** The system's resolver (/etc/hosts, search domains, then DNS): getaddrinfo, on a thread of libuv's small pool. */
const systemResolve: Resolve = (hostname, family) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, family }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/** Lookups through the system's resolver at once: they hold threads of a pool of 4 (files and crypto use it too) until they end. */
const SYSTEM_LOOKUPS_AT_ONCE = 2;
const NO_RECORD = new Set(["ENOTFOUND", "ENODATA"]);

/** At most `n` calls of `f` running at once; the others wait their turn. */
function oneAtATime<A extends unknown[], T>(n: number, f: (...a: A) => Promise<T>): (...a: A) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (...a) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await f(...a);
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/**
 * Resolves a tenant's host name without tying up the thread pool: names with a dot are asked
 * of DNS directly (c-ares, asynchronous, its own timeouts), so a domain whose name servers
 * never answer costs a pending query, not a thread that every other lookup, file read and
 * hash of the process waits behind. A name DNS does not know (one of /etc/hosts, a search
 * domain's) and a single-label name (`localhost`, a compose service) go to the system's
 * resolver, a few at a time.
 */
export function tenantResolve(servers?: string[]): Resolve {
  const dns = new Resolver({ timeout: 2_000, tries: 2 });
  if (servers) dns.setServers(servers);
  const system = oneAtATime(SYSTEM_LOOKUPS_AT_ONCE, systemResolve);
  return async (hostname, family) => {
    const name = hostname.replace(/\.$/, "");
    if (!name.includes(".")) return system(hostname, family);
    const asked = await Promise.allSettled([
      family === 6 ? Promise.resolve([]) : dns.resolve4(name).then((a) => a.map((address) => ({ address, family: 4 }))),
      family === 4 ? Promise.resolve([]) : dns.resolve6(name).then((a) => a.map((address) => ({ address, family: 6 }))),
    ]);
    const found = asked.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    if (found.length) return found;
    const errors = asked.flatMap((r) => (r.status === "rejected" ? [r.reason as NodeJS.ErrnoException] : []));
    if (errors.every((e) => NO_RECORD.has(e.code ?? ""))) return system(hostname, family);
    throw errors.find((e) => !NO_RECORD.has(e.code ?? ""))!;
  };
}

export interface SenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** How host names are resolved (tenantResolve by default). */
  resolve?: Resolve;
}

/** Refused by our own rules, not by the network: the address a name resolved to is special-use. */
class BlockedAddress extends Error {
  override name = "BlockedAddress";
}

/**
 * Resolves a host name and hands the connection only addresses outside the special-use
 * ranges. The socket connects to exactly what this returned, so a name that resolves to a
 * public address here and to 127.0.0.1 a moment later (DNS rebinding) cannot reach inside.
 * A refusal does not say what the name resolved to: the delivery log is the tenant's, and
 * the addresses of names inside our network are not.
 */
export function guardedLookup(allowPrivate: boolean, resolve: Resolve = tenantResolve()): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, Number(options.family) || 0).then(
      (addresses) => {
        const allowed = allowPrivate ? addresses : addresses.filter((a) => !isSpecialUse(a.address));
        if (!allowed.length) {
          const what = addresses.length ? "resolves only to private or special-use addresses" : "resolves to no address";
          return callback(new BlockedAddress(`${hostname} ${what}; not connected`), "", 0);
        }
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
        callback(null, allowed[0]!.address, allowed[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, "", 0),
    );
  };
}

const oneLine = (s: string, max = ERROR_TEXT_CAP) =>
  s
    .replace(/[\r\n\t]+/g, " ")
    .replace(/[^\x20-\x7e\u00a0-\uffff]/g, "?")
    .slice(0, max);

/**
 * POSTs signed webhook bodies. Each attempt is bounded in time as a whole, never follows a
 * redirect, reads at most RESPONSE_READ_CAP of the answer, and connects only to an address
 * it checked (unless private addresses are allowed). Sockets are kept alive between attempts.
 */
export class WebhookSender {
  private readonly lookup: LookupFunction;
  /**
   * An idle socket is closed after IDLE_SOCKET_MS: a busy endpoint reuses its sockets long
   * before, while thousands of tenants' quiet endpoints do not each keep sockets open for a
   * minute (file descriptors); and it goes before a receiver's own idle timeout (Node's is 5 s)
   * can close it under a request, which would fail that attempt.
   */
  private readonly agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: IDLE_SOCKET_MS }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: IDLE_SOCKET_MS }),
  };

  constructor(private readonly o: SenderOptions) {
    this.lookup = guardedLookup(o.allowPrivate, o.resolve);
  }

  async post(rawUrl: string, body: Buffer, headers: Record<string, string>): Promise<AttemptResult> {
    const started = performance.now();
    const done = (r: Omit<AttemptResult, "latencyMs">): AttemptResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return done({ statusCode: null, success: false, error: "the URL does not parse" });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return done({ statusCode: null, success: false, error: `${url.protocol} is not http or https` });
    const literal = literalAddressOf(url);
    // A literal address is never looked up: it is checked here.
    if (literal && !this.o.allowPrivate && isSpecialUse(literal)) {
      return done({ statusCode: null, success: false, error: `${literal} is a private or special-use address; not connected` });
    }
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (r: Omit<AttemptResult, "latencyMs">) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(done(r));
      };
      const transport = url.protocol === "https:" ? https : http;
      let req: http.ClientRequest;
      try {
        req = transport.request(url, {
          method: "POST",
          agent: this.agents[url.protocol as "http:" | "https:"],
          lookup: this.lookup,
          headers: { ...headers, "content-type": "application/json", "content-length": String(body.length), "user-agent": USER_AGENT },
        });
      } catch (err) {
        // A URL the request refuses outright is the webhook's failure, logged and retried as any other (not ours, retried for ever).
        return resolve(done({ statusCode: null, success: false, error: oneLine(`the request could not be made: ${(err as Error).message}`) }));
      }
      // Decided after the I/O already waiting is read (setImmediate runs after the poll phase):
      // when the event loop was held up (a long collection, a busy replica), the timer and the
      // answer are both due at once, and timers go first. An answer that came in time would be
      // taken for a timeout, and the event sent again.
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (settled) return;
            req.destroy();
            finish({ statusCode: null, success: false, error: `timed out after ${this.o.timeoutMs} ms` });
          }),
        this.o.timeoutMs,
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        const what = err instanceof BlockedAddress ? err.message : `${err.code ? `${err.code}: ` : ""}${err.message}`;
        finish({ statusCode: null, success: false, error: oneLine(what) });
      });
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        const kept: Buffer[] = [];
        let read = 0;
        let keptBytes = 0;
        const conclude = () => {
          const text = oneLine(Buffer.concat(kept).toString("utf8").trim());
          if (status >= 200 && status < 300) return finish({ statusCode: status, success: true, error: null });
          if (status >= 300 && status < 400) return finish({ statusCode: status, success: false, error: "redirect not followed" });
          finish({ statusCode: status, success: false, error: text ? `HTTP ${status}: ${text}` : `HTTP ${status}` });
        };
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (keptBytes < ERROR_TEXT_CAP) {
            kept.push(chunk.subarray(0, ERROR_TEXT_CAP - keptBytes));
            keptBytes += Math.min(chunk.length, ERROR_TEXT_CAP - keptBytes);
          }
          // Enough of it: the rest is not read (the socket goes, rather than back to the pool).
          if (read >= RESPONSE_READ_CAP) {
            res.destroy();
            conclude();
          }
        });
        res.on("end", conclude);
        res.on("error", conclude);
        res.on("aborted", conclude);
      });
      req.end(body);
    });
  }

  close(): void {
    for (const a of Object.values(this.agents)) a.destroy();
  }
}
