import { describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { checkWebhookUrl } from "./url-policy.ts";

const refused = (url: string) => {
  try {
    checkWebhookUrl(url, false);
    return false;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("VALIDATION_ERROR");
    expect((err as AppError).fields).toEqual([{ path: "url", message: expect.stringContaining("special-use") }]);
    return true;
  }
};

describe("webhook URL policy", () => {
  it("refuses a literal special-use address in every spelling the URL parser accepts", () => {
    for (const url of [
      "http://127.0.0.1/hook",
      "http://127.1/",
      "http://0x7f.0.0.1/",
      "http://2130706433/",
      "http://0177.0.0.1/",
      "https://10.0.0.5:8443/x",
      "http://169.254.169.254/latest/meta-data",
      "http://100.64.1.1/",
      "http://0.0.0.0/",
      "http://0/",
      "http://127.0.0.1./",
      "http://%31%32%37.0.0.1/",
      "http://[::127.0.0.1]/",
      "http://[64:ff9b::127.0.0.1]/",
      "http://[2002:7f00:1::]/",
      "http://224.0.0.1/",
      "http://[::1]/",
      "http://[::]/",
      "http://[fe80::1]/",
      "http://[fd00::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:7f00:1]/",
      "http://[0:0:0:0:0:ffff:a00:1]/",
    ])
      expect(refused(url), url).toBe(true);
  });

  it("lets public addresses and host names through (a name is checked when it is resolved)", () => {
    for (const url of ["https://93.184.215.14/hook", "https://[2a00:1450:4001::1a]/", "https://hooks.example.com/x", "http://localhost:8080/"])
      expect(refused(url), url).toBe(false);
  });

  it("lets anything through when private addresses are allowed", () => {
    expect(() => checkWebhookUrl("http://127.0.0.1:9/hook", true)).not.toThrow();
  });
});
