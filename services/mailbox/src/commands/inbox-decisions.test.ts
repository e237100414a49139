import { describe, expect, it } from "vitest";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { addressAdded, addressRemoved, callers, D, filed, ids, inboxDeleted, mailboxes } from "./decision-fixtures.ts";
import { decide, evolve, initial, type InboxCommand } from "./inbox-decisions.ts";
import { quarantineAt } from "./inbox-state.ts";

/** The service clock of these decisions. */
const NOW = "2026-11-30T12:00:00.000Z";

const spec = deciderSpec({ initial, evolve, decide });
/** As load reads them under the lock: custom domains verified in acme's main workspace. */
const withDomains = (...names: string[]) => deciderSpec({ initial: () => ({ ...initial(), customDomains: { [ids.acmeMain]: names } }), evolve, decide });
const { acmeTenant, acmeMain, acmeSales, supportInbox, salesInbox, globexTenant, operator } = callers;

describe("UpdateInbox", () => {
  const update = (caller = acmeTenant): InboxCommand => ({ type: "UpdateInbox", caller, inboxId: ids.support, displayName: "Help", metadata: { tier: 1 } });

  it("records the new displayName and metadata, one version on", () => {
    const { drafts } = spec
      .given([...mailboxes, addressAdded(ids.support, "help@mail.test")])
      .when(update())
      .expectEvents([{ type: "InboxUpdated", schemaVersion: 1, data: { inboxId: ids.support, displayName: "Help", metadata: { tier: 1 } } }]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.support, aggregateVersion: 3 }]);
  });

  it("is open to the inbox's own ak_ key and its workspace's wk_ key", () => {
    spec
      .given(mailboxes)
      .when(update(supportInbox))
      .expectEvents([expect.objectContaining({ type: "InboxUpdated" })]);
    spec
      .given(mailboxes)
      .when(update(acmeMain))
      .expectEvents([expect.objectContaining({ type: "InboxUpdated" })]);
  });

  it("answers 404 to every outsider, as to a deleted inbox", () => {
    for (const caller of [salesInbox, acmeSales, globexTenant, operator]) spec.given(mailboxes).when(update(caller)).expectRefusal("NOT_FOUND");
    spec
      .given([...mailboxes, inboxDeleted(ids.support, ["support@mail.test"])])
      .when(update())
      .expectRefusal("NOT_FOUND");
  });
});

describe("DeleteInbox", () => {
  const del = (caller = acmeTenant): InboxCommand => ({ type: "DeleteInbox", caller, inboxId: ids.support });

  it("deletes the inbox with every address it has", () => {
    spec
      .given([
        ...mailboxes,
        addressAdded(ids.support, "help@mail.test"),
        addressAdded(ids.support, "old@mail.test"),
        addressRemoved(ids.support, "old@mail.test"),
      ])
      .when(del(acmeMain))
      .expectEvents([
        { type: "InboxDeleted", schemaVersion: 1, data: { inboxId: ids.support, addresses: ["support@mail.test", "help@mail.test"], reason: "deleted" } },
      ]);
  });

  it("is refused to ak_ keys, even the inbox's own (403 before 404)", () => {
    spec.given(mailboxes).when(del(supportInbox)).expectRefusal("FORBIDDEN");
    spec.given(mailboxes).when(del(salesInbox)).expectRefusal("FORBIDDEN");
  });

  it("answers 404 to other workspaces and tenants, and for an inbox already deleted", () => {
    spec.given(mailboxes).when(del(acmeSales)).expectRefusal("NOT_FOUND");
    spec.given(mailboxes).when(del(globexTenant)).expectRefusal("NOT_FOUND");
    spec
      .given([...mailboxes, inboxDeleted(ids.support, ["support@mail.test"])])
      .when(del())
      .expectRefusal("NOT_FOUND");
  });
});

describe("AddAddress", () => {
  const add = (address: string, primary = true, caller = acmeTenant, over: Partial<Extract<InboxCommand, { type: "AddAddress" }>> = {}): InboxCommand => ({
    type: "AddAddress",
    caller,
    inboxId: ids.support,
    address,
    primary,
    maxAddresses: 20,
    platformDomain: D,
    quarantine: quarantineAt(new Date(NOW), D, 30),
    reserved: { domain: "platform.test", extra: [] },
    ...over,
  });
  const at = (e: MailboxEvent, occurredAt: string) => ({ ...e, occurredAt });

  it("adds an alias, primary or not, one version on", () => {
    const { drafts } = spec
      .given(mailboxes)
      .when(add("help@mail.test"))
      .expectEvents([{ type: "AddressAdded", schemaVersion: 1, data: { inboxId: ids.support, address: "help@mail.test", isPrimary: true } }]);
    expect(filed(drafts)[0]!.aggregateVersion).toBe(2);
    spec
      .given(mailboxes)
      .when(add("help@mail.test", false))
      .expectEvents([expect.objectContaining({ data: expect.objectContaining({ isPrimary: false }) })]);
  });

  it("refuses an address anyone holds, another tenant or this very inbox: 409", () => {
    spec
      .given(mailboxes)
      .when(add("rival@mail.test"))
      .expectRefusal("CONFLICT", /rival@mail\.test already exists/);
    spec.given(mailboxes).when(add("sales@mail.test")).expectRefusal("CONFLICT");
    spec.given(mailboxes).when(add("support@mail.test")).expectRefusal("CONFLICT");
  });

  it("takes an address its holder let go of, when no quarantine holds it back", () => {
    spec
      .given([...mailboxes, inboxDeleted(ids.rival, ["rival@mail.test"])])
      .when(add("rival@mail.test", true, acmeTenant, { quarantine: null }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
  });

  it("holds back an address another tenant released within the quarantine; its own tenant may reclaim it", () => {
    const released = [...mailboxes, at(inboxDeleted(ids.rival, ["rival@mail.test"]), "2026-11-20T00:00:00.000Z")];
    spec
      .given(released)
      .when(add("rival@mail.test"))
      .expectRefusal("CONFLICT", /rival@mail\.test was released recently by another account and is held back/);
    // 30 days later it is free for anyone; with the quarantine off, at once.
    spec
      .given(released)
      .when(add("rival@mail.test", true, acmeTenant, { quarantine: quarantineAt(new Date("2026-12-20T00:00:01.000Z"), D, 30) }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
    spec
      .given(released)
      .when(add("rival@mail.test", true, acmeTenant, { quarantine: quarantineAt(new Date(NOW), D, 0) }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
    // acme's own alias, removed: acme takes it back.
    spec
      .given([
        ...mailboxes,
        addressAdded(ids.sales, "old@mail.test"),
        at(addressRemoved(ids.sales, "old@mail.test", "sales@mail.test"), "2026-11-29T00:00:00.000Z"),
      ])
      .when(add("old@mail.test"))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
  });

  it("holds back only addresses of the quarantined domain (a custom domain's owner has its mail anyway)", () => {
    withDomains("globex.example")
      .given([...mailboxes, addressAdded(ids.rival, "x@globex.example"), at(addressRemoved(ids.rival, "x@globex.example"), "2026-11-29T00:00:00.000Z")])
      .when(add("x@globex.example"))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
  });

  it("refuses a reserved address of the platform domain: 400", () => {
    for (const local of ["postmaster", "abuse", "hostmaster", "admin", "mailer-daemon", "no-reply", "bounces+abcdefghijklmnop", "custom"]) {
      spec
        .given(mailboxes)
        .when(add(`${local}@mail.test`, true, acmeTenant, { reserved: { domain: D, extra: ["custom"] } }))
        .expectRefusal("VALIDATION_ERROR", /is reserved on mail\.test/);
    }
    withDomains("acme.example")
      .given(mailboxes)
      .when(add("postmaster@acme.example", true, acmeTenant, { reserved: { domain: D, extra: [] } }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
  });

  it("refuses an alias on a custom domain that load did not find verified in the inbox's workspace (removed since the lockless check): 400", () => {
    withDomains("acme.example")
      .given(mailboxes)
      .when(add("alice@acme.example"))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
    for (const usable of [spec, withDomains("other.example")]) {
      usable
        .given(mailboxes)
        .when(add("alice@acme.example"))
        .expectRefusal("VALIDATION_ERROR", /must be on mail\.test or a custom domain verified in this workspace/);
    }
    // Verified in another workspace of the tenant is not enough.
    deciderSpec({ initial: () => ({ ...initial(), customDomains: { [ids.acmeSales]: ["acme.example"] } }), evolve, decide })
      .given(mailboxes)
      .when(add("alice@acme.example"))
      .expectRefusal("VALIDATION_ERROR", /custom domain verified in this workspace/);
  });

  it("caps the addresses of an inbox, its own included: 409 beyond the cap", () => {
    const withTwo = [...mailboxes, addressAdded(ids.support, "a@mail.test")];
    spec
      .given(withTwo)
      .when(add("b@mail.test", true, acmeTenant, { maxAddresses: 2 }))
      .expectRefusal("CONFLICT", /at most 2 addresses/);
    spec
      .given(withTwo)
      .when(add("b@mail.test", true, acmeTenant, { maxAddresses: 3 }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
    // A removed alias frees its place.
    spec
      .given([...withTwo, addressRemoved(ids.support, "a@mail.test", "support@mail.test")])
      .when(add("b@mail.test", true, acmeTenant, { maxAddresses: 2 }))
      .expectEvents([expect.objectContaining({ type: "AddressAdded" })]);
  });

  it("answers 404 to an outsider before looking at the address", () => {
    spec
      .given(mailboxes)
      .when(add("rival@mail.test", true, globexTenant))
      .expectRefusal("NOT_FOUND");
  });
});

describe("RemoveAddress", () => {
  const remove = (address: string, caller = acmeTenant): InboxCommand => ({ type: "RemoveAddress", caller, inboxId: ids.support, address });
  const removed = (address: string, newPrimary: string | null) => ({
    type: "AddressRemoved" as const,
    schemaVersion: 1 as const,
    data: { inboxId: ids.support, address, newPrimary },
  });

  it("removes an alias; when it was the primary, the canonical address is primary again", () => {
    spec
      .given([...mailboxes, addressAdded(ids.support, "help@mail.test")])
      .when(remove("help@mail.test"))
      .expectEvents([removed("help@mail.test", "support@mail.test")]);
    spec
      .given([...mailboxes, addressAdded(ids.support, "help@mail.test", false)])
      .when(remove("help@mail.test"))
      .expectEvents([removed("help@mail.test", null)]);
  });

  it("follows the primary as aliases come: an alias no longer primary leaves the primary alone", () => {
    const history = [...mailboxes, addressAdded(ids.support, "a@mail.test"), addressAdded(ids.support, "b@mail.test")];
    spec
      .given(history)
      .when(remove("a@mail.test"))
      .expectEvents([removed("a@mail.test", null)]);
    spec
      .given(history)
      .when(remove("b@mail.test"))
      .expectEvents([removed("b@mail.test", "support@mail.test")]);
  });

  it("refuses to remove the canonical address: 409", () => {
    spec
      .given(mailboxes)
      .when(remove("support@mail.test"))
      .expectRefusal("CONFLICT", /canonical/);
  });

  it("answers 404 for an address the inbox does not have, or no longer has", () => {
    spec
      .given(mailboxes)
      .when(remove("sales@mail.test"))
      .expectRefusal("NOT_FOUND", /Address/);
    spec
      .given([...mailboxes, addressAdded(ids.support, "help@mail.test"), addressRemoved(ids.support, "help@mail.test", "support@mail.test")])
      .when(remove("help@mail.test"))
      .expectRefusal("NOT_FOUND", /Address/);
  });

  it("answers 404 (the inbox's) to outsiders", () => {
    spec
      .given([...mailboxes, addressAdded(ids.support, "help@mail.test")])
      .when(remove("help@mail.test", salesInbox))
      .expectRefusal("NOT_FOUND", /Inbox/);
  });
});
