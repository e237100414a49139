/**
 * The mail `pnpm bench:read` seeds: message n is a pure function of n and of the inboxes, so a
 * run that continues a kept data set generates what comes next, and a message published twice
 * (a run stopped mid-step, then continued) has the same bytes and the same dedupe key.
 * Message n goes to inbox n mod the number of inboxes; about 30% answer an earlier message of
 * the same inbox (In-Reply-To and References), so threads form; about half are
 * multipart/alternative (text and HTML), the rest plain text; 2-4 KB each.
 */

export interface MailInbox {
  email: string;
}

const WORDS = (
  "the quarterly report attached numbers look fine but the invoice from last week still shows the old address " +
  "please confirm whether the shipment left the warehouse on tuesday and who signs the customs forms we agreed " +
  "to move the meeting to thursday afternoon so the team in berlin can join before their evening also review " +
  "the draft contract section four on liability and send comments by friday thanks for the quick turnaround"
).split(" ");
const SENDER_DOMAINS = 40;
const SENDERS = 500;
const BASE_DATE = Date.UTC(2026, 0, 1);

/** A small deterministic generator (mulberry32): the same n gives the same message. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const messageIdOf = (n: number) => `<bench-${n}@sender${n % SENDER_DOMAINS}.example>`;

/** The earlier message of the same inbox that message n answers, or null when it starts a thread. */
function parentOf(n: number, inboxes: number): number | null {
  const r = random(n * 7919 + 1);
  if (r() >= 0.3) return null;
  const parent = n - inboxes * (1 + Math.floor(r() * 3));
  return parent >= 0 ? parent : null;
}

function sentence(r: () => number): string {
  const n = 6 + Math.floor(r() * 12);
  const words = Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!);
  words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
  return `${words.join(" ")}.`;
}

/** The thread's first subject, for `Re:` on every answer. */
function rootOf(n: number, inboxes: number): number {
  let at = n;
  for (let p = parentOf(at, inboxes); p !== null; p = parentOf(at, inboxes)) at = p;
  return at;
}

/** The References of message n: its ancestors, oldest first, at most ten. */
function referencesOf(n: number, inboxes: number): string[] {
  const chain: string[] = [];
  for (let p = parentOf(n, inboxes); p !== null && chain.length < 10; p = parentOf(p, inboxes)) chain.unshift(messageIdOf(p));
  return chain;
}

/** The RFC 5322 bytes of message n (CRLF line ends), without the Received header the door adds. */
export function benchMail(n: number, inboxes: MailInbox[]): { bytes: Buffer; to: string; mailFrom: string } {
  const r = random(n * 104729 + 17);
  const to = inboxes[n % inboxes.length]!.email;
  const sender = Math.floor(r() * SENDERS);
  const mailFrom = `sender${sender}@sender${sender % SENDER_DOMAINS}.example`;
  const parent = parentOf(n, inboxes.length);
  const root = rootOf(n, inboxes.length);
  const subject = `${parent === null ? "" : "Re: "}${sentence(random(root * 31 + 5)).slice(0, 60)}`;
  const target = 2000 + Math.floor(r() * 1700);
  const paragraphs: string[] = [];
  let size = 0;
  const multipart = r() < 0.5;
  // The HTML part repeats the text: half the budget each.
  while (size < (multipart ? target / 2 : target) - 250) {
    const p = Array.from({ length: 2 + Math.floor(r() * 3) }, () => sentence(r)).join(" ");
    paragraphs.push(p);
    size += p.length + 4;
  }
  const text = paragraphs.join("\r\n\r\n");
  const headers = [
    `From: "Sender ${sender}" <${mailFrom}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Date: ${new Date(BASE_DATE + n * 30_000).toUTCString()}`,
    `Message-ID: ${messageIdOf(n)}`,
    ...(parent === null ? [] : [`In-Reply-To: ${messageIdOf(parent)}`, `References: ${referencesOf(n, inboxes.length).join(" ")}`]),
    "MIME-Version: 1.0",
  ];
  let body: string;
  if (multipart) {
    const boundary = `=_bench_${n}`;
    const html = `<html><body>${paragraphs.map((p) => `<p>${p}</p>`).join("\r\n")}</body></html>`;
    headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    body =
      `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n` +
      `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n--${boundary}--\r\n`;
  } else {
    headers.push("Content-Type: text/plain; charset=utf-8");
    body = `${text}\r\n`;
  }
  return { bytes: Buffer.from(`${headers.join("\r\n")}\r\n\r\n${body}`, "utf8"), to, mailFrom };
}
