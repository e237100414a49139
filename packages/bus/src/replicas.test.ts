import { JetStreamApiError } from "@nats-io/jetstream";
import { TimeoutError } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { isTimeout } from "./connection.ts";
import { declarePatiently, isPassing } from "./replicas.ts";

describe("declarePatiently", () => {
  it("asks again when NATS does not answer in time, and returns the declaration's result", async () => {
    let calls = 0;
    const result = await declarePatiently("the X stream", async () => {
      calls++;
      if (calls < 3) throw calls === 1 ? new TimeoutError() : new Error("request failed", { cause: new TimeoutError() });
      return "declared";
    });
    expect(result).toBe("declared");
    expect(calls).toBe(3);
  });

  it("asks again when the cluster refuses for a passing reason: unavailable for a moment, or the stream there but not yet seen", async () => {
    const refusals = [
      new JetStreamApiError({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" }),
      new JetStreamApiError({ code: 500, err_code: 10065, description: "subjects overlap with an existing stream" }),
      new JetStreamApiError({ code: 400, err_code: 10058, description: "stream name already in use with a different configuration" }),
    ];
    let calls = 0;
    const result = await declarePatiently("the X stream", async () => {
      const refusal = refusals[calls++];
      if (refusal) throw refusal;
      return "declared";
    });
    expect(result).toBe("declared");
    expect(calls).toBe(4);
    expect(isPassing(new JetStreamApiError({ code: 400, err_code: 10052, description: "replicas > 1 not supported in non-clustered mode" }))).toBe(false);
  });

  it("passes any other error on at once", async () => {
    let calls = 0;
    const refused = new Error("insufficient resources");
    await expect(
      declarePatiently("the X stream", async () => {
        calls++;
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  it("gives the last timeout to the caller once its patience is spent", async () => {
    let calls = 0;
    const err = await declarePatiently(
      "the X stream",
      async () => {
        calls++;
        throw new TimeoutError();
      },
      undefined,
      600,
    ).catch((e: unknown) => e);
    expect(isTimeout(err)).toBe(true);
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(6);
  });
});
