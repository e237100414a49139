import { describe, expect, it } from "vitest";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { allocate, candidates, decide, evolve, initial, MAX_FALLBACK, type CreateInbox } from "./create-inbox-decision.ts";
import { addressAdded, addressRemoved, callers, D, filed, ids, inboxCreated, inboxDeleted, mailboxes } from "./decision-fixtures.ts";
import { quarantineAt } from "./inbox-state.ts";

/** The service clock of these decisions. */
const NOW = "2026-11-30T12:00:00.000Z";
const at = (e: MailboxEvent, occurredAt: string) => ({ ...e, occurredAt });

const spec = deciderSpec({ initial, evolve, decide });
/** As load reads them under the lock: custom domains verified in acme's main workspace. */
const withDomains = (...names: string[]) => deciderSpec({ initial: () => ({ ...initial(), customDomains: { [ids.acmeMain]: names } }), evolve, decide });

const create = (over: Partial<CreateInbox> = {}): CreateInbox => ({
  caller: callers.acmeTenant,
  inboxId: ids.newInbox,
  tenantId: ids.acme,
  workspaceId: ids.acmeMain,
  base: "bob",
  domain: D,
  platformDomain: D,
  strict: false,
  displayName: "Bob",
  metadata: { team: "a" },
  quarantine: quarantineAt(new Date(NOW), D, 30),
  reserved: { domain: "platform.test", extra: [] },
  ...over,
});

const created = (username: string, cmd = create()): MailboxEvent => ({
  type: "InboxCreated",
  schemaVersion: 1,
  data: {
    inboxId: cmd.inboxId,
    tenantId: cmd.tenantId,
    workspaceId: cmd.workspaceId,
    username,
    domain: cmd.domain,
    address: `${username}@${cmd.domain}`,
    displayName: cmd.displayName,
    metadata: cmd.metadata,
  },
});

/** globex holds these usernames. */
const globexHolds = (...names: string[]) =>
  names.map((n, i) => inboxCreated(`01900000-0000-7000-8000-0000000090${String(i).padStart(2, "0")}`, ids.globex, ids.globexMain, n));

describe("CreateInbox", () => {
  it("takes the name asked for when it is free: a new inbox, version 1, in the target workspace", () => {
    const { drafts } = spec
      .given(mailboxes)
      .when(create())
      .expectEvents([created("bob")]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.newInbox, aggregateVersion: 1 }]);
  });

  it("falls back to name1, name2 … when another tenant holds the name", () => {
    spec
      .given(globexHolds("bob"))
      .when(create())
      .expectEvents([created("bob1")]);
    spec
      .given(globexHolds("bob", "bob1"))
      .when(create())
      .expectEvents([created("bob2")]);
  });

  it("refuses USERNAME_TAKEN under strict, naming the username", () => {
    spec
      .given(globexHolds("bob"))
      .when(create({ strict: true }))
      .expectRefusal("USERNAME_TAKEN", /"bob" is taken on mail\.test/);
  });

  it("refuses USERNAME_TAKEN when the name and all its fallbacks are held", () => {
    const all = candidates(create()).map((c) => c.username);
    expect(all).toHaveLength(MAX_FALLBACK + 1);
    spec
      .given(globexHolds(...all))
      .when(create())
      .expectRefusal("USERNAME_TAKEN", /bob1 … bob99 are all taken/);
  });

  it("returns the caller's own inbox at that name: no event", () => {
    const outcome = spec
      .given([inboxCreated(ids.support, ids.acme, ids.acmeMain, "bob")])
      .when(create())
      .expectEvents([]);
    expect(outcome.drafts).toEqual([]);
    const state = [inboxCreated(ids.support, ids.acme, ids.acmeMain, "bob")].reduce(evolve, initial());
    expect(allocate(create(), state)).toEqual({ kind: "existing", inboxId: ids.support });
  });

  it("returns the caller's own inbox at a fallback it was given before, also under strict", () => {
    const history = [...globexHolds("bob"), inboxCreated(ids.support, ids.acme, ids.acmeMain, "bob1")];
    spec.given(history).when(create()).expectEvents([]);
    spec
      .given([inboxCreated(ids.support, ids.acme, ids.acmeMain, "bob")])
      .when(create({ strict: true }))
      .expectEvents([]);
  });

  it("with no username given (the tenant's name), answers the inbox the tenant has there, as for a name given", () => {
    spec
      .given([inboxCreated(ids.support, ids.acme, ids.acmeMain, "bob")])
      .when(create({ derived: true }))
      .expectEvents([]);
  });

  it("treats an inbox of a workspace the caller does not see as someone else's", () => {
    const history = [inboxCreated(ids.support, ids.acme, ids.acmeSales, "bob")];
    spec
      .given(history)
      .when(create({ caller: callers.acmeMain }))
      .expectEvents([created("bob1")]);
    spec
      .given(history)
      .when(create({ caller: callers.acmeMain, strict: true }))
      .expectRefusal("USERNAME_TAKEN");
  });

  it("takes an address freed by a deleted inbox or a removed alias once its quarantine is over", () => {
    const [rival] = globexHolds("bob");
    spec
      .given([rival!, at(inboxDeleted("01900000-0000-7000-8000-000000009000", ["bob@mail.test"]), "2026-10-31T11:59:59.000Z")])
      .when(create())
      .expectEvents([created("bob")]);
    const alias = [addressAdded(ids.rival, "bob@mail.test"), addressRemoved(ids.rival, "bob@mail.test", "rival@mail.test")];
    spec
      .given([...mailboxes, alias[0]!])
      .when(create())
      .expectEvents([created("bob1")]);
    spec
      .given([...mailboxes, ...alias])
      .when(create({ quarantine: null }))
      .expectEvents([created("bob")]);
  });

  describe("quarantine of released addresses", () => {
    const [rival] = globexHolds("bob");
    const released = (when: string) => [rival!, at(inboxDeleted("01900000-0000-7000-8000-000000009000", ["bob@mail.test"]), when)];

    it("holds back an address another tenant released within ADDRESS_QUARANTINE_DAYS: a fallback, or 409 under strict", () => {
      spec
        .given(released("2026-11-29T00:00:00.000Z"))
        .when(create())
        .expectEvents([created("bob1")]);
      spec
        .given(released("2026-11-29T00:00:00.000Z"))
        .when(create({ strict: true }))
        .expectRefusal("USERNAME_TAKEN", /bob@mail\.test was released recently by another account and is held back/);
    });

    it("lets time pass on the service clock: free once the days are over, or at once with 0 days", () => {
      const history = released("2026-11-29T00:00:00.000Z");
      spec
        .given(history)
        .when(create({ strict: true, quarantine: quarantineAt(new Date("2026-12-29T00:00:00.000Z"), D, 30) }))
        .expectRefusal("USERNAME_TAKEN");
      spec
        .given(history)
        .when(create({ strict: true, quarantine: quarantineAt(new Date("2026-12-29T00:00:00.001Z"), D, 30) }))
        .expectEvents([created("bob")]);
      expect(quarantineAt(new Date(NOW), D, 0)).toBeNull();
      spec
        .given(history)
        .when(create({ strict: true, quarantine: quarantineAt(new Date(NOW), D, 0) }))
        .expectEvents([created("bob")]);
    });

    it("lets the tenant that released it take it back at once", () => {
      spec
        .given(released("2026-11-30T11:00:00.000Z"))
        .when(create({ caller: callers.globexTenant, tenantId: ids.globex, workspaceId: ids.globexMain, strict: true }))
        .expectEvents([created("bob", create({ caller: callers.globexTenant, tenantId: ids.globex, workspaceId: ids.globexMain }))]);
    });

    it("ends with a new claim: released again later, it is held back from then", () => {
      const reclaimed = [
        ...released("2026-01-01T00:00:00.000Z"),
        inboxCreated(ids.rival, ids.globex, ids.globexMain, "bob"),
        at(inboxDeleted(ids.rival, ["bob@mail.test"]), "2026-11-30T00:00:00.000Z"),
      ];
      spec
        .given(reclaimed)
        .when(create({ strict: true }))
        .expectRefusal("USERNAME_TAKEN", /held back/);
    });
  });

  describe("reserved addresses and closed workspaces", () => {
    it("refuses a reserved username on the platform domain (RFC 2142 and system names, RESERVED_LOCAL_PARTS)", () => {
      for (const base of ["postmaster", "abuse", "admin", "hostmaster", "webmaster", "root", "noreply", "ssl-admin", "custom"]) {
        spec
          .given([])
          .when(create({ base, reserved: { domain: D, extra: ["custom"] } }))
          .expectRefusal("VALIDATION_ERROR", new RegExp(`"${base}" is reserved on mail\\.test`));
      }
    });

    it("falls back from a reserved name derived from the tenant's (a tenant called Support), rather than refusing it; asked again, the same", () => {
      const derived = create({ base: "support", derived: true, reserved: { domain: D, extra: [] } });
      spec
        .given([])
        .when(derived)
        .expectEvents([created("support1", derived)]);
      spec
        .given([inboxCreated(ids.support, ids.acme, ids.acmeMain, "support1")])
        .when(derived)
        .expectEvents([]);
    });

    it("leaves a tenant's custom domain alone, and skips a reserved fallback", () => {
      withDomains("acme.example")
        .given([])
        .when(create({ base: "postmaster", domain: "acme.example", reserved: { domain: D, extra: [] } }))
        .expectEvents([created("postmaster", create({ base: "postmaster", domain: "acme.example" }))]);
      spec
        .given(globexHolds("bob"))
        .when(create({ reserved: { domain: D, extra: ["bob1"] } }))
        .expectEvents([created("bob2")]);
    });

    it("creates nothing in a workspace that ended: 404", () => {
      spec
        .given([{ type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.acmeMain, tenantId: ids.acme } }])
        .when(create())
        .expectRefusal("NOT_FOUND", /Workspace/);
      spec
        .given([{ type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.acmeSales, tenantId: ids.acme } }])
        .when(create())
        .expectEvents([created("bob")]);
    });

    it("creates nothing on a custom domain that load did not find verified in the workspace (removed since the lockless check): 400", () => {
      const onAcme = create({ domain: "acme.example" });
      withDomains("acme.example")
        .given([])
        .when(onAcme)
        .expectEvents([created("bob", onAcme)]);
      for (const usable of [spec, withDomains("other.example")]) {
        usable
          .given([])
          .when(onAcme)
          .expectRefusal("VALIDATION_ERROR", /domain must be mail\.test or a verified custom domain of this workspace/);
      }
      // Verified in another workspace of the tenant is not enough.
      deciderSpec({ initial: () => ({ ...initial(), customDomains: { [ids.acmeSales]: ["acme.example"] } }), evolve, decide })
        .given([])
        .when(onAcme)
        .expectRefusal("VALIDATION_ERROR", /verified custom domain of this workspace/);
    });
  });

  it("counts an address reserved for this very command as free", () => {
    const state = initial();
    state.claims["bob@mail.test"] = { tenantId: ids.globex, workspaceId: ids.globexMain, inboxId: ids.rival };
    state.claims["bob1@mail.test"] = { tenantId: ids.acme, workspaceId: ids.acmeMain, inboxId: ids.newInbox };
    expect(decide(create({ strict: false }), state).map((d) => d.event)).toEqual([created("bob1")]);
  });

  it("cuts a long name so that the number fits in 64 characters", () => {
    const base = "x".repeat(64);
    const [first, second, tenth] = [0, 1, 10].map((n) => candidates({ base, domain: D, strict: false })[n]!.username);
    expect([first, second, tenth]).toEqual([base, `${"x".repeat(63)}1`, `${"x".repeat(62)}10`]);
    expect(candidates({ base, domain: D, strict: true })).toHaveLength(1);
  });
});
