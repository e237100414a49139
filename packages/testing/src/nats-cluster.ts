import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivateNatsServer } from "./nats-server.ts";
import { freePort } from "./processes.ts";

/**
 * A JetStream cluster of the test's own: `size` local nats-server processes routed to one
 * another, each with its own client port, cluster port and store directory, any of which a
 * test may kill -9 and restart. Each node is a PrivateNatsServer given a configuration file
 * that holds its name and routes.
 */
export class NatsCluster {
  readonly nodes: PrivateNatsServer[] = [];
  readonly names: string[] = [];
  private readonly down = new Set<number>();
  private readonly dir = mkdtempSync(join(tmpdir(), "nats-cluster-"));

  constructor(private readonly size = 3) {}

  /** Every node's client URL, comma separated, as NATS_URL takes them. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  /**
   * Starts every node. A port found free may be taken before its node binds it (by another
   * test file, or as the source port of a connection, the nodes' own routes among them): then
   * the nodes are stopped and started again on other ports, a few times.
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (err) {
        if (attempt >= 4 || !/address already in use/i.test(String(err))) throw err;
        await Promise.all(this.nodes.map((n) => n.stop()));
        this.nodes.length = 0;
        this.names.length = 0;
      }
    }
  }

  private async startOnce(): Promise<void> {
    const clusterPorts = await Promise.all(Array.from({ length: this.size }, () => freePort()));
    const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
    for (let i = 0; i < this.size; i++) {
      const name = `n${i + 1}`;
      const config = join(this.dir, `${name}.conf`);
      writeFileSync(config, `server_name: ${name}\ncluster {\n  name: mam-test\n  listen: 127.0.0.1:${clusterPorts[i]}\n  routes: [${routes}]\n}\n`);
      this.names.push(name);
      this.nodes.push(new PrivateNatsServer({ config }));
    }
    await Promise.all(this.nodes.map((n) => n.start()));
    await this.untilLeader();
  }

  /**
   * Until JetStream answers on every running node: the nodes have elected a meta leader, so
   * streams can be created (and, after a restart, the node has caught up with the cluster).
   */
  async untilLeader(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const n of this.running()) {
          const ok = await this.withNode(n, (jsm) => jsm.getAccountInfo().then(() => true)).catch(() => false);
          if (!ok) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 200, what: "a JetStream meta leader in the cluster" },
    );
  }

  /** The node that leads a stream (its writes go through it), by index. */
  async leaderOf(stream: string): Promise<number> {
    const leader = await this.withNode(this.running()[0]!, async (jsm) => (await jsm.streams.info(stream)).cluster?.leader);
    const i = this.names.indexOf(leader ?? "");
    if (i < 0) throw new Error(`stream ${stream} has no leader`);
    return i;
  }

  /** kill -9 of one node: no chance to flush or to hand over leadership. */
  async kill(i: number): Promise<void> {
    this.down.add(i);
    await this.nodes[i]!.kill();
  }

  /** Starts a killed node again on its port and store, and waits until the cluster answers again. */
  async restart(i: number): Promise<void> {
    await this.nodes[i]!.start();
    this.down.delete(i);
    await this.untilLeader();
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private running(): PrivateNatsServer[] {
    return this.nodes.filter((_, i) => !this.down.has(i));
  }

  /** Runs `fn` with a JetStream manager on a short-lived connection to one node. */
  async withNode<T>(node: PrivateNatsServer, fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T> {
    const nc = await connect({ servers: node.url, timeout: 2_000, reconnect: false });
    try {
      return await fn(await jetstreamManager(nc, { timeout: 2_000 }), nc);
    } finally {
      await nc.close();
    }
  }
}
