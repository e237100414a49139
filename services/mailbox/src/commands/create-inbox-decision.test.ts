import { describe, expect, it } from "vitest";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { allocate, candidates, decide, evolve, initial, MAX_FALLBACK, type CreateInbox } from "./create-inbox-decision.ts";
import { addressAdded, addressRemoved, callers, D, filed, ids, inboxCreated, inboxDeleted, mailboxes } from "./decision-fixtures.ts";

const spec = deciderSpec({ initial, evolve, decide });

const create = (over: Partial<CreateInbox> = {}): CreateInbox => ({
  caller: callers.acmeTenant,
  inboxId: ids.newInbox,
  tenantId: ids.acme,
  workspaceId: ids.acmeMain,
  base: "bob",
  domain: D,
  strict: false,
  displayName: "Bob",
  metadata: { team: "a" },
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

  it("takes an address freed by a deleted inbox or a removed alias", () => {
    const [rival] = globexHolds("bob");
    spec
      .given([rival!, inboxDeleted("01900000-0000-7000-8000-000000009000", ["bob@mail.test"])])
      .when(create())
      .expectEvents([created("bob")]);
    const alias = [addressAdded(ids.rival, "bob@mail.test"), addressRemoved(ids.rival, "bob@mail.test", "rival@mail.test")];
    spec
      .given([...mailboxes, alias[0]!])
      .when(create())
      .expectEvents([created("bob1")]);
    spec
      .given([...mailboxes, ...alias])
      .when(create())
      .expectEvents([created("bob")]);
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
