import { describe, expect, it } from "vitest";
import { ConfigError } from "@mam/runtime/config.ts";
import { loadConfig } from "./config.ts";

describe("smtp-ingress config", () => {
  it("the buffer budget defaults to 256 MiB and must hold at least the largest message", () => {
    expect(loadConfig({}).SMTP_MAX_BUFFERED_BYTES).toBe(256 * 1024 * 1024);
    expect(() => loadConfig({ SMTP_MAX_MESSAGE_BYTES: "2000", SMTP_MAX_BUFFERED_BYTES: "1999" })).toThrow(ConfigError);
    expect(() => loadConfig({ SMTP_MAX_MESSAGE_BYTES: "2000", SMTP_MAX_BUFFERED_BYTES: "1999" })).toThrow(
      /SMTP_MAX_BUFFERED_BYTES: must be at least SMTP_MAX_MESSAGE_BYTES/,
    );
    expect(loadConfig({ SMTP_MAX_MESSAGE_BYTES: "2000", SMTP_MAX_BUFFERED_BYTES: "2000" }).SMTP_MAX_BUFFERED_BYTES).toBe(2000);
  });
});
