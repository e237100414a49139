import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import type { MailboxEnvelope, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { applyMailboxEvents } from "@mam/mailbox/projections/mailbox-read-model.ts";
import { sendingInbox } from "@mam/mailbox/read/inboxes.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { mailboxEnvelope } from "../support/events.ts";
import { mailboxSchemaDb } from "../support/mailbox-schema.ts";

/**
 * sendingInbox reads the inboxes of the sends asked for at the same moment with one
 * statement, whoever asks: each caller must still get its own inbox, seen through its own
 * claims (a 404 for an inbox of another workspace, tenant or key), never another caller's.
 */
describe("sendingInbox: concurrent reads of inboxes of different workspaces", () => {
  const iso = isolate();
  let db: Kysely<MailboxDb>;
  /** Reads of the inboxes' table through `db`, counted as they end. */
  let inboxReads = 0;
  const D = "agents.test";

  const T = randomUUID();
  const wsA = randomUUID();
  const wsB = randomUUID();
  const other = { tenant: randomUUID(), ws: randomUUID() };
  /** Inboxes: two in workspace A, one in B (same tenant), one of another tenant, one deleted in A. */
  const a = randomUUID();
  const a2 = randomUUID();
  const b = randomUUID();
  const c = randomUUID();
  const gone = randomUUID();

  const claims = (o: Partial<ScopeClaims> & Pick<ScopeClaims, "kind" | "tenantId" | "workspaces">): ScopeClaims => ({
    v: 1,
    aud: ["mailbox"],
    kid: randomUUID(),
    inboxId: null,
    iat: 0,
    exp: 0,
    ...o,
  });
  const keyOfA = claims({ kind: "workspace", tenantId: T, workspaces: [wsA] });
  const keyOfB = claims({ kind: "workspace", tenantId: T, workspaces: [wsB] });
  const tenantKey = claims({ kind: "tenant", tenantId: T, workspaces: "*" });
  const inboxKeyOfA = claims({ kind: "inbox", tenantId: T, workspaces: [wsA], inboxId: a });

  let version = 0;
  const envelope = (tenantId: string, workspaceId: string, aggregateId: string, event: MailboxEvent): MailboxEnvelope =>
    mailboxEnvelope({ tenantId, workspaceId, aggregateId, aggregateVersion: ++version }, event);
  const created = (tenantId: string, workspaceId: string, inboxId: string, username: string) =>
    envelope(tenantId, workspaceId, inboxId, {
      type: "InboxCreated",
      schemaVersion: 1,
      data: { inboxId, tenantId, workspaceId, username, domain: D, address: `${username}@${D}`, displayName: null, metadata: {} },
    });

  /** The inbox a call answers with, or the code of the AppError it is refused with. */
  const outcome = (p: Promise<{ inbox_id: string; workspace_id: string; from_address: string }>) =>
    p.then(
      (r) => ({ inbox: r.inbox_id, workspace: r.workspace_id, from: r.from_address }),
      (err: unknown) => {
        if (!(err instanceof AppError)) throw err;
        return err.code;
      },
    );

  beforeAll(async () => {
    db = await mailboxSchemaDb(iso, {
      max: 4,
      log: (e) => {
        if (/ from "inboxes" as "i"/.test(e.query.sql)) inboxReads++;
      },
    });
    const events = [
      created(T, wsA, a, "alice"),
      created(T, wsA, a2, "alice2"),
      created(T, wsB, b, "bob"),
      envelope(T, wsB, b, { type: "AddressAdded", schemaVersion: 1, data: { inboxId: b, address: `robert@${D}`, isPrimary: true } }),
      created(other.tenant, other.ws, c, "carol"),
      created(T, wsA, gone, "gone"),
      envelope(T, wsA, gone, { type: "InboxDeleted", schemaVersion: 1, data: { inboxId: gone, addresses: [`gone@${D}`], reason: "deleted" } }),
    ];
    await db.transaction().execute((tx) =>
      applyMailboxEvents(
        tx,
        events.map((e, i) => ({ e, seq: i + 1 })),
      ),
    );
  });
  afterAll(async () => {
    await db?.destroy();
    await iso.cleanup();
  });

  const A = { inbox: a, workspace: wsA, from: `alice@${D}` };
  const A2 = { inbox: a2, workspace: wsA, from: `alice2@${D}` };
  const B = { inbox: b, workspace: wsB, from: `robert@${D}` };

  it("two workspaces' keys asking for both workspaces' inboxes at once: each gets its own inbox, the other's is a 404", async () => {
    const asks: [ScopeClaims, string, unknown][] = [];
    for (let i = 0; i < 10; i++) {
      asks.push([keyOfA, a, A], [keyOfA, b, "NOT_FOUND"], [keyOfB, b, B], [keyOfB, a, "NOT_FOUND"]);
    }
    const before = inboxReads;
    const answers = await Promise.all(asks.map(([key, id]) => outcome(sendingInbox(db, key, id))));
    expect(answers).toEqual(asks.map(([, , expected]) => expected));
    // They were read together (one statement for the forty), yet each answered through its own claims.
    expect(inboxReads - before).toBe(1);
  });

  it("a tenant key, an inbox key and another tenant's inbox, asked for at once", async () => {
    const asks: [ScopeClaims, string, unknown][] = [
      [tenantKey, a, A],
      [tenantKey, b, B],
      // Another tenant's inbox: not seen, whatever the key's workspaces.
      [tenantKey, c, "NOT_FOUND"],
      [keyOfA, c, "NOT_FOUND"],
      // An inbox key sees its own inbox only, not its workspace's others.
      [inboxKeyOfA, a, A],
      [inboxKeyOfA, a2, "NOT_FOUND"],
      [keyOfA, a2, A2],
      // No inbox at all.
      [keyOfA, randomUUID(), "NOT_FOUND"],
    ];
    const answers = await Promise.all(asks.map(([key, id]) => outcome(sendingInbox(db, key, id))));
    expect(answers).toEqual(asks.map(([, , expected]) => expected));
  });

  it("an inbox id in upper case finds the inbox, beside callers asking for it in lower case", async () => {
    const before = inboxReads;
    const answers = await Promise.all([
      outcome(sendingInbox(db, keyOfA, a.toUpperCase())),
      outcome(sendingInbox(db, keyOfA, a)),
      outcome(sendingInbox(db, keyOfB, b.toUpperCase())),
      outcome(sendingInbox(db, keyOfA, b.toUpperCase())),
    ]);
    expect(answers).toEqual([A, A, B, "NOT_FOUND"]);
    expect(inboxReads - before).toBe(1);
  });

  it("a deleted inbox is a 404, beside a live one asked for at the same moment", async () => {
    const answers = await Promise.all([
      outcome(sendingInbox(db, keyOfA, gone)),
      outcome(sendingInbox(db, keyOfA, a)),
      outcome(sendingInbox(db, tenantKey, gone.toUpperCase())),
    ]);
    expect(answers).toEqual(["NOT_FOUND", A, "NOT_FOUND"]);
  });

  it("an id that is no UUID is refused before any read", async () => {
    const before = inboxReads;
    expect(await outcome(sendingInbox(db, keyOfA, "not-a-uuid"))).toBe("VALIDATION_ERROR");
    expect(inboxReads).toBe(before);
  });
});
