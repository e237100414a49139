import { describe, expect, it } from "vitest";
import { forwardFailure, UncertainOutcome } from "./errors.ts";
import { honoursIdempotencyKey } from "./route.ts";
import { forwardRoutes } from "./routes.ts";

describe("which unanswered POSTs may be retried", () => {
  const routeOf = (path: string) => forwardRoutes.find((r) => r.method === "post" && r.path === path)!;

  it("a route honours the Idempotency-Key header only when its service takes one from the header, never from a body as sent", () => {
    for (const path of ["/inboxes/:inboxId/send", "/inboxes/:inboxId/reply/:messageId", "/inboxes/:inboxId/forward/:messageId"]) {
      expect(honoursIdempotencyKey(routeOf(path)), path).toBe(true);
    }
    for (const path of ["/inboxes", "/tenants", "/workspaces"]) expect(honoursIdempotencyKey(routeOf(path)), path).toBe(false);
  });

  it("an unanswered POST is an uncertain outcome unless keyed; anything else keeps the service's error", () => {
    const error = { error: "did not answer in time", code: "UNAVAILABLE" as const };
    expect(forwardFailure("post", false, error, true)).toBeInstanceOf(UncertainOutcome);
    expect(forwardFailure("post", true, error, true)).not.toBeInstanceOf(UncertainOutcome);
    expect(forwardFailure("get", false, error, true)).not.toBeInstanceOf(UncertainOutcome);
    expect(forwardFailure("post", false, error, false)).not.toBeInstanceOf(UncertainOutcome);
  });
});
