import { returnPathToken } from "@mam/contracts/ingest.ts";
import type { Mailbox } from "./directory.ts";

/** At most this many platform return paths in one message (the ingest contract's bound). */
export const MAX_RETURN_PATHS = 50;

/** The recipients a transaction has gathered so far. */
export interface Transaction {
  recipients: Map<string, Mailbox>;
  /** Platform return path address → its token. */
  returnPaths: Map<string, string>;
  /** RCPT commands accepted, repeats included: what SMTP_MAX_RECIPIENTS bounds. */
  accepted: number;
}

export const newTransaction = (): Transaction => ({ recipients: new Map(), returnPaths: new Map(), accepted: 0 });

export type RcptDecision =
  | { kind: "recipient"; address: string; mailbox: Mailbox }
  | { kind: "return-path"; address: string; token: string }
  | { kind: "refuse"; code: number; text: string /** No inbox has the address, by the directory as it is now. */; unknown?: true };

export interface RcptQuestion {
  address: string;
  /** The transaction's reverse-path is null (`MAIL FROM:<>`): a delivery report. */
  nullSender: boolean;
  txn: Transaction;
  maxRecipients: number;
  mailDomain: string;
  directoryReady: boolean;
  lookup: (address: string) => Mailbox | undefined;
}

/**
 * Who RCPT may name: an address of an inbox, or a return path of the platform's own mail
 * (`bounces+<token>@MAIL_DOMAIN`), the latter only in a delivery report. Never a relay.
 */
export function decideRcpt(q: RcptQuestion): RcptDecision {
  const address = q.address.toLowerCase();
  if (q.txn.accepted >= q.maxRecipients) return { kind: "refuse", code: 452, text: "4.5.3 Too many recipients" };
  const token = returnPathToken(address, q.mailDomain);
  if (token !== null) {
    // Anyone could otherwise drop arbitrary mail into the bounce handling of the platform.
    if (!q.nullSender)
      return { kind: "refuse", code: 550, text: "5.7.1 This is a bounce address: it accepts only delivery reports, sent from the null sender <>" };
    if (!q.txn.returnPaths.has(address) && q.txn.returnPaths.size >= MAX_RETURN_PATHS) {
      return { kind: "refuse", code: 452, text: "4.5.3 Too many bounce addresses in one message" };
    }
    return { kind: "return-path", address, token };
  }
  if (!q.directoryReady) return { kind: "refuse", code: 451, text: "4.3.0 Address directory is loading, try again shortly" };
  const mailbox = q.lookup(address);
  if (!mailbox) return { kind: "refuse", code: 550, text: "5.1.1 No such mailbox here", unknown: true };
  return { kind: "recipient", address, mailbox };
}

/** Adds an accepted recipient to the transaction. */
export function admitRcpt(txn: Transaction, d: Extract<RcptDecision, { kind: "recipient" | "return-path" }>): void {
  txn.accepted++;
  if (d.kind === "recipient") txn.recipients.set(d.address, d.mailbox);
  else txn.returnPaths.set(d.address, d.token);
}
