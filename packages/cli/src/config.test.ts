import { describe, expect, it } from "vitest";
import { loadCliConfig } from "./config.ts";
import { CliError } from "./context.ts";
import { healthEndpoints } from "./status-report.ts";

describe("the CLI's settings", () => {
  it("takes the services' NATS settings, errors-only logging and no extra health endpoints by default", () => {
    const c = loadCliConfig({});
    expect(c).toMatchObject({ NATS_URL: "nats://127.0.0.1:4222", NATS_PREFIX: "", LOG_LEVEL: "error", MAM_HEALTH: "" });
    expect(loadCliConfig({ LOG_LEVEL: "debug", NATS_PREFIX: "t1.", MAM_HEALTH: "a=http://x" })).toMatchObject({
      LOG_LEVEL: "debug",
      NATS_PREFIX: "t1.",
      MAM_HEALTH: "a=http://x",
    });
  });

  it("refuses a bad setting as the command's CONFIG error, naming it", () => {
    for (const [env, name] of [
      [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
      [{ NATS_PREFIX: "two.tokens." }, "NATS_PREFIX"],
    ] as const) {
      const err = (() => {
        try {
          loadCliConfig(env);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).code).toBe("CONFIG");
      expect((err as CliError).message).toContain(name);
    }
  });

  it("reads health endpoints from MAM_HEALTH and --health together", () => {
    expect(healthEndpoints(" smtp=http://127.0.0.1:8083, ", ["billing=http://b:1/x=y"])).toEqual([
      ["smtp", "http://127.0.0.1:8083"],
      ["billing", "http://b:1/x=y"],
    ]);
    expect(() => healthEndpoints("", ["nourl"])).toThrow(/name=url/);
  });
});
