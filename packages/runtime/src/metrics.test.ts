import { describe, expect, it } from "vitest";
import { ServiceMetrics } from "./metrics.ts";

const seriesOf = (text: string, name: string) => text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe("ServiceMetrics.watch", () => {
  it("reads its source when scraped, once for a burst of scrapes", async () => {
    const m = new ServiceMetrics();
    let reads = 0;
    m.watch("lag", "test", ["consumer"], () => {
      reads++;
      return [{ labels: { consumer: "a" }, value: reads }];
    });
    expect(reads).toBe(0);
    const texts = await Promise.all([m.exposition(), m.exposition(), m.exposition()]);
    expect(reads).toBe(1);
    for (const t of texts) expect(seriesOf(t, "lag")).toEqual(['lag{consumer="a"} 1']);
  });

  it("several sources feed one gauge; one that fails or never answers is left out, the scrape still answers", async () => {
    const m = new ServiceMetrics();
    m.watch("depth", "test", ["state"], () => [{ labels: { state: "due" }, value: 3 }]);
    m.watch("depth", "test", ["state"], () => Promise.reject(new Error("database down")));
    const stop = m.watch("depth", "test", ["state"], () => new Promise(() => undefined));
    const text = await m.exposition();
    expect(seriesOf(text, "depth")).toEqual(['depth{state="due"} 3']);
    // The rest of the registry is there: the process metrics too.
    expect(text).toContain("process_cpu_user_seconds_total");
    stop();
  });

  it("a source no longer watched leaves no series behind", async () => {
    const m = new ServiceMetrics();
    const stop = m.watch("backlog", "test", [], () => [{ value: 7 }]);
    expect(seriesOf(await m.exposition(), "backlog")).toEqual(["backlog 7"]);
    stop();
    expect(seriesOf(await m.exposition(), "backlog")).toEqual([]);
  });

  it("counters and histograms are found again by name (replicas in one process share them)", () => {
    const m = new ServiceMetrics();
    expect(m.counter("c_total", "x", ["a"])).toBe(m.counter("c_total", "x", ["a"]));
    expect(m.histogram("h_seconds", "x")).toBe(m.histogram("h_seconds", "x"));
  });
});
