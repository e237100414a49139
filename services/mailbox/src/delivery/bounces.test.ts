import { describe, expect, it } from "vitest";
import { readDeliveryReport } from "./bounces.ts";

const report = (status: string) =>
  Buffer.from(
    [
      "From: MAILER-DAEMON@mx.example",
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
      "",
      "--b",
      "Content-Type: text/plain",
      "",
      "Delivery failed.",
      "--b",
      "Content-Type: message/delivery-status",
      "",
      "Reporting-MTA: dns; mx.example",
      "",
      status,
      "--b--",
      "",
    ].join("\r\n"),
  );

describe("readDeliveryReport", () => {
  it("reads who failed and why, in the usual layout", () => {
    const r = readDeliveryReport(
      report("Final-Recipient: rfc822; Bob@Example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user"),
    );
    expect(r).toEqual({ recipients: ["bob@example.com"], reasons: { "bob@example.com": "smtp; 550 5.1.1 no such user" } });
  });

  it("reads an address in angle brackets, lower-case field names and fields folded anywhere", () => {
    const r = readDeliveryReport(
      report("final-recipient: rfc822\r\n ; <carol@example.com>\r\noriginal-recipient:\r\n rfc822; <dave@example.com>\r\naction: failed\r\nstatus: 5.0.0"),
    );
    expect(r?.recipients.sort()).toEqual(["carol@example.com", "dave@example.com"]);
    expect(r?.reasons).toEqual({ "carol@example.com": "5.0.0", "dave@example.com": "5.0.0" });
  });

  it("bounces only the recipients whose own block says failed, each with its block's reason; a report in bare LF reads alike", () => {
    const blocks = [
      "Final-Recipient: rfc822; alice@example.com\r\nAction: delayed\r\nStatus: 4.4.1\r\nDiagnostic-Code: smtp; 451 try later",
      "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 no bob",
      "Final-Recipient: rfc822; carol@example.com\r\nAction: delivered\r\nStatus: 2.0.0",
      "Final-Recipient: rfc822; dave@example.com\r\nAction: failed\r\nStatus: 5.2.2",
    ].join("\r\n\r\n");
    const want = { recipients: ["bob@example.com", "dave@example.com"], reasons: { "bob@example.com": "smtp; 550 no bob", "dave@example.com": "5.2.2" } };
    expect(readDeliveryReport(report(blocks))).toEqual(want);
    const lf = Buffer.from(report(blocks).toString("latin1").replace(/\r\n/g, "\n"), "latin1");
    expect(readDeliveryReport(lf)).toEqual(want);
  });

  it("reads in one pass whatever a report's lines hold, and takes an empty Diagnostic-Code for none", () => {
    // A recipient line of spaces without its ";" once took quadratic backtracking.
    expect(readDeliveryReport(report(`Final-Recipient: rfc822${" ".repeat(300_000)}x\r\nAction: failed\r\nStatus: 5.0.0`))).toBeNull();
    const r = readDeliveryReport(report("Final-Recipient: rfc822; eve@example.com\r\nAction: failed\r\nDiagnostic-Code:\r\nStatus: 5.0.0"));
    expect(r?.reasons).toEqual({ "eve@example.com": "5.0.0" });
  });

  it("is not a report of failure when no recipient failed, or when it is not a delivery-status report", () => {
    expect(readDeliveryReport(report("Final-Recipient: rfc822; bob@example.com\r\nAction: delayed\r\nStatus: 4.4.1"))).toBeNull();
    expect(readDeliveryReport(Buffer.from("Content-Type: text/plain\r\n\r\nAction: failed\r\nFinal-Recipient: rfc822; bob@example.com\r\n"))).toBeNull();
  });
});
