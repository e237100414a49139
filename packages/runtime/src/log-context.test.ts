import { describe, expect, it } from "vitest";
import { addLogContext, currentLogContext, withLogContext } from "./log-context.ts";
import { createLogger } from "./logger.ts";

describe("log context", () => {
  const setup = () => {
    // A destination that keeps the lines (as @mam/testing's LogCapture does; not a dependency of this package).
    const logs = {
      lines: [] as string[],
      write(line: string) {
        this.lines.push(line);
      },
      entries() {
        return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      },
    };
    return { logs, logger: createLogger("test", "info", logs) };
  };

  it("every line written within the work carries its ids, across awaits, nested work adding its own", async () => {
    const { logs, logger } = setup();
    logger.info("outside");
    await withLogContext({ requestId: "r1" }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      logger.info("in the request");
      await withLogContext({ messageId: "m1" }, async () => {
        addLogContext({ queueId: "q1" });
        logger.info({ n: 1 }, "in the message");
      });
      logger.info("back in the request");
    });
    const lines = logs.entries();
    expect(lines[0]).not.toHaveProperty("requestId");
    expect(lines[1]).toMatchObject({ requestId: "r1", msg: "in the request" });
    expect(lines[2]).toMatchObject({ requestId: "r1", messageId: "m1", queueId: "q1", n: 1 });
    expect(lines[3]).not.toHaveProperty("messageId");
    expect(lines[3]).not.toHaveProperty("queueId");
  });

  it("a field the line names wins, once in the line; the context is not written to; secrets stay redacted", () => {
    const { logs, logger } = setup();
    withLogContext({ requestId: "r1", messageId: "m1" }, () => {
      logger.info({ messageId: "m2", token: "s3cret" }, "named");
      expect(currentLogContext()).toEqual({ requestId: "r1", messageId: "m1" });
    });
    expect(logs.lines[0]!.match(/"messageId"/g)).toHaveLength(1);
    expect(logs.entries()[0]).toMatchObject({ requestId: "r1", messageId: "m2", token: "[redacted]" });
  });

  it("adding fields outside any work is a no-op", () => {
    addLogContext({ requestId: "stray" });
    expect(currentLogContext()).toBeUndefined();
  });
});
