import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@mam/runtime/logger.ts";
import { LogCapture } from "@mam/testing/log-capture.ts";
import { errorHandler } from "./errors.ts";

/** The edge's error handler in a real express app, fed the errors express and its body parser raise. */
describe("errorHandler", () => {
  const logs = new LogCapture();
  let base = "";
  let server: ReturnType<express.Express["listen"]>;
  beforeAll(async () => {
    const app = express();
    // What the JSON body parser raises when the client hangs up mid-body.
    app.get("/aborted", (_req, _res, next) =>
      next(Object.assign(new Error("request aborted"), { type: "request.aborted", code: "ECONNABORTED", status: 400 })),
    );
    app.get("/db-gone", (_req, _res, next) => next(Object.assign(new Error("getaddrinfo ENOTFOUND postgres"), { code: "ENOTFOUND", syscall: "getaddrinfo" })));
    app.use(errorHandler(createLogger("gateway", "info", logs)));
    server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("a client that hung up mid-body is its own fault (400), not an outage", async () => {
    const res = await fetch(`${base}/aborted`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "VALIDATION_ERROR" });
    expect(logs.entries().some((e) => e.msg === "dependency unavailable")).toBe(false);
  });

  it("a database whose host name is gone (a stopped container) is an outage: 503 with Retry-After", async () => {
    const res = await fetch(`${base}/db-gone`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await res.json()).toEqual({ error: expect.any(String), code: "UNAVAILABLE" });
  });
});
