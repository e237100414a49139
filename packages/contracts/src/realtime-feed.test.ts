import { describe, expect, it } from "vitest";
import { feedRouteOf, feedSubject } from "./realtime-feed.ts";

describe("feedRouteOf", () => {
  const tenantId = "6f1c2d1e-9a51-4a3e-9d8e-0c6f3b2a1d10";
  const workspaceId = "0b6d9f4e-2c1a-4e8b-b7d3-5a9e1c2f3a44";
  const inboxId = "c3a1e2d4-7b6f-4a5e-8d9c-1f2e3a4b5c66";

  it("reads back the tenant, workspace and inbox its subject was made of, with or without an inbox", () => {
    for (const prefix of ["", "t1234."]) {
      expect(feedRouteOf(prefix, feedSubject(prefix, { tenantId, workspaceId, inboxId, eventType: "message.received" }))).toEqual({
        tenantId,
        workspaceId,
        inboxId,
      });
      expect(feedRouteOf(prefix, feedSubject(prefix, { tenantId, workspaceId, inboxId: null, eventType: "domain.verified" }))).toEqual({
        tenantId,
        workspaceId,
        inboxId: null,
      });
    }
  });

  it("gives nothing for another subject or one cut short", () => {
    expect(feedRouteOf("", `evt.mailbox.${tenantId}.${workspaceId}.MessageSent`)).toBeUndefined();
    expect(feedRouteOf("p.", `rt.${tenantId}.${workspaceId}.${inboxId}.message.received`)).toBeUndefined();
    expect(feedRouteOf("", `rt.${tenantId}.${workspaceId}`)).toBeUndefined();
  });
});
