import { describe, expect, it } from "vitest";
import { AppError, ErrorBody, limitReached } from "./errors.ts";

describe("AppError", () => {
  it("carries a plan limit's name, usage and maximum through its body and back", () => {
    const body = limitReached("A tenant has at most 2 webhooks", { limit: "webhooks", usage: 2, max: 2 }).toBody();
    expect(body).toEqual({ error: "A tenant has at most 2 webhooks", code: "PLAN_LIMIT_REACHED", limit: "webhooks", usage: 2, max: 2 });
    // As a service's answer crosses the bus: parsed, then thrown again at the edge.
    expect(AppError.fromBody(ErrorBody.parse(body)).toBody()).toEqual(body);
  });

  it("keeps the offending fields, and adds nothing an error did not have", () => {
    const body = new AppError("VALIDATION_ERROR", "Invalid body", [{ path: "url", message: "bad" }]).toBody();
    expect(AppError.fromBody(body).toBody()).toEqual({ error: "Invalid body", code: "VALIDATION_ERROR", fields: [{ path: "url", message: "bad" }] });
    expect(AppError.fromBody({ error: "gone", code: "NOT_FOUND" }).toBody()).toEqual({ error: "gone", code: "NOT_FOUND" });
  });
});
