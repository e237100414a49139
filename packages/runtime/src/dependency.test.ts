import { describe, expect, it } from "vitest";
import { DependencyUnavailable, isDependencyOutage } from "./dependency.ts";

const withCode = (code: string, message = "boom") => Object.assign(new Error(message), { code });
const named = (name: string) => Object.assign(new Error("x"), { name });

describe("isDependencyOutage", () => {
  it("a server gone, refusing or unreachable is an outage", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"]) expect(isDependencyOutage(withCode(code)), code).toBe(true);
    expect(isDependencyOutage(new DependencyUnavailable("PostgreSQL", "postgres://u:pw@db/x", new Error("refused")))).toBe(true);
  });

  it("PostgreSQL saying it cannot serve now is an outage: shutdown, starting, too many connections, connection exceptions", () => {
    for (const code of ["57P01", "57P02", "57P03", "53300", "08006", "08001"]) expect(isDependencyOutage(withCode(code)), code).toBe(true);
  });

  it("node-postgres and its pool losing or never getting a connection is an outage", () => {
    for (const m of [
      "timeout exceeded when trying to connect",
      "Connection terminated unexpectedly",
      "Client has encountered a connection error and is not queryable",
    ]) {
      expect(isDependencyOutage(new Error(m)), m).toBe(true);
    }
    expect(isDependencyOutage(new Error("Connection terminated due to connection timeout", { cause: new Error("timeout expired") }))).toBe(true);
  });

  it("a server's host name gone (a stopped container) or its socket missing is an outage; a lookup a handler made is not", () => {
    const sys = (code: string, syscall: string) => Object.assign(new Error(`${syscall} ${code} postgres`), { code, syscall });
    expect(isDependencyOutage(sys("ENOTFOUND", "getaddrinfo"))).toBe(true);
    expect(isDependencyOutage(sys("ENOENT", "connect"))).toBe(true);
    expect(isDependencyOutage(sys("ENOTFOUND", "queryMx"))).toBe(false);
    expect(isDependencyOutage(sys("ENOENT", "open"))).toBe(false);
  });

  it("a protocol violation (08P01) is Postgres refusing a bug of ours, not an outage", () => {
    expect(isDependencyOutage(withCode("08P01", "bind message has 70000 parameter formats but 0 parameters"))).toBe(false);
  });

  it("NATS closed, draining, silent or with no responder is an outage", () => {
    for (const n of ["ClosedConnectionError", "DrainingConnectionError", "TimeoutError", "NoResponders"]) expect(isDependencyOutage(named(n)), n).toBe(true);
  });

  it("looks through causes and the errors of a connect tried on several addresses", () => {
    expect(isDependencyOutage(new Error("query failed", { cause: withCode("ECONNRESET") }))).toBe(true);
    expect(isDependencyOutage(new AggregateError([new Error("no"), withCode("ECONNREFUSED")]))).toBe(true);
  });

  it("an answer of the database or a bug is not an outage", () => {
    for (const code of ["23505", "23503", "42P01", "42601", "P0001", "40001", "22P02"]) expect(isDependencyOutage(withCode(code)), code).toBe(false);
    expect(isDependencyOutage(new TypeError("Cannot read properties of undefined"))).toBe(false);
    expect(isDependencyOutage(named("PermissionViolationError"))).toBe(false);
    expect(isDependencyOutage("ECONNREFUSED")).toBe(false);
    expect(isDependencyOutage(undefined)).toBe(false);
  });
});
