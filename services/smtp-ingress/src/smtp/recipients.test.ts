import { describe, expect, it } from "vitest";
import type { Mailbox } from "./directory.ts";
import { admitRcpt, decideRcpt, MAX_RETURN_PATHS, newTransaction, type RcptQuestion } from "./recipients.ts";

const box: Mailbox = { tenantId: "t", workspaceId: "w", inboxId: "i" };
const token = "abcdefghijklmnop234567";
const ask = (o: Partial<RcptQuestion>): RcptQuestion => ({
  address: "someone@agents.test",
  nullSender: false,
  txn: newTransaction(),
  maxRecipients: 5,
  mailDomain: "agents.test",
  directoryReady: true,
  lookup: (a) => (a === "someone@agents.test" ? box : undefined),
  ...o,
});

describe("decideRcpt", () => {
  it("an inbox's address, in any case, is a recipient", () => {
    expect(decideRcpt(ask({ address: "SomeOne@Agents.Test" }))).toEqual({ kind: "recipient", address: "someone@agents.test", mailbox: box });
  });

  it("an unknown address or a foreign domain: 550 5.1.1, never a relay", () => {
    for (const address of ["nobody@agents.test", "someone@gmail.com"])
      expect(decideRcpt(ask({ address }))).toMatchObject({ kind: "refuse", code: 550, text: expect.stringMatching(/^5\.1\.1 /) });
  });

  it("a return path from the null sender is carried with its token, the directory not asked (nor needed)", () => {
    const d = decideRcpt(ask({ address: `bounces+${token}@agents.test`, nullSender: true, directoryReady: false, lookup: () => box }));
    expect(d).toEqual({ kind: "return-path", address: `bounces+${token}@agents.test`, token });
  });

  it("a return path from any other sender: 550 5.7.1", () => {
    expect(decideRcpt(ask({ address: `bounces+${token}@agents.test` }))).toMatchObject({ kind: "refuse", code: 550, text: expect.stringMatching(/^5\.7\.1 /) });
  });

  it("a bounces+ address of the wrong shape, or of another domain, is an ordinary address", () => {
    expect(decideRcpt(ask({ address: "bounces+short@agents.test", nullSender: true }))).toMatchObject({ code: 550, text: expect.stringMatching(/^5\.1\.1 /) });
    expect(decideRcpt(ask({ address: `bounces+${token}@other.test`, nullSender: true }))).toMatchObject({
      code: 550,
      text: expect.stringMatching(/^5\.1\.1 /),
    });
  });

  it("past the recipient limit, repeats and return paths counted: 452 4.5.3", () => {
    const txn = newTransaction();
    admitRcpt(txn, { kind: "recipient", address: "someone@agents.test", mailbox: box });
    admitRcpt(txn, { kind: "recipient", address: "someone@agents.test", mailbox: box });
    admitRcpt(txn, { kind: "return-path", address: `bounces+${token}@agents.test`, token });
    expect(txn.recipients.size + txn.returnPaths.size).toBe(2);
    expect(decideRcpt(ask({ txn, maxRecipients: 3 }))).toMatchObject({ code: 452, text: expect.stringMatching(/^4\.5\.3 /) });
  });

  it(`at most ${MAX_RETURN_PATHS} return paths in one message`, () => {
    const txn = newTransaction();
    for (let i = 0; i < MAX_RETURN_PATHS; i++) admitRcpt(txn, { kind: "return-path", address: `bounces+${token}${i}@agents.test`, token });
    const next = ask({ address: `bounces+${token}zz@agents.test`, nullSender: true, txn, maxRecipients: 1000 });
    expect(decideRcpt(next)).toMatchObject({ code: 452 });
  });

  it("while the directory loads: 451 4.3.0 for inbox addresses", () => {
    expect(decideRcpt(ask({ directoryReady: false }))).toMatchObject({ code: 451, text: expect.stringMatching(/^4\.3\.0 /) });
  });
});
