import { randomBytes } from "node:crypto";
import pg from "pg";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { eventsStreamName, rpcReplyBucketName } from "@mam/contracts/subjects.ts";
import { ingestBucketName, ingestStreamName } from "@mam/contracts/ingest.ts";
import { generateScopeKeys } from "@mam/scope/key-material.ts";
import { serverUrls } from "./servers.ts";

/**
 * Everything one test file needs to run beside others on the same servers: its own
 * NATS subject prefix (so its own stream), its own Postgres schemas, its own scope keys.
 */
export interface Isolation {
  tag: string;
  prefix: string;
  schema: (service: string) => string;
  urls: { NATS_URL: string; DATABASE_URL: string; REDIS_URL: string };
  /** This file's own pair: the private key goes to its gateways (and to tests that sign tokens themselves), the public one to every service. */
  scopeKeys: { privateKeyPem: string; publicKeyPem: string };
  /** Environment shared by every service of this file (before each service's own settings). */
  env: Record<string, string>;
  /** Runs `fn` with a JetStream manager on its own short-lived connection. */
  jetstream<T>(fn: (jsm: JetStreamManager) => Promise<T>): Promise<T>;
  cleanup(): Promise<void>;
}

async function withJetStream<T>(url: string, fn: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

/** `tag`: a previous run's, to use (and clean up) its schemas and streams again (a bench that keeps its data). */
export function isolate(tag = `t${randomBytes(5).toString("hex")}`): Isolation {
  const prefix = `${tag}.`;
  const urls = serverUrls();
  const scopeKeys = generateScopeKeys();
  const schemas = new Set<string>();
  return {
    tag,
    prefix,
    urls,
    scopeKeys,
    schema: (service) => {
      const s = `${tag}_${service.replace(/-/g, "_")}`;
      schemas.add(s);
      return s;
    },
    env: {
      ...urls,
      NATS_PREFIX: prefix,
      LOG_LEVEL: "warn",
      SCOPE_PUBLIC_KEY: Buffer.from(scopeKeys.publicKeyPem).toString("base64"),
      HEALTH_PORT: "0",
      PORT: "0",
      HOST: "127.0.0.1",
    },
    jetstream: (fn) => withJetStream(urls.NATS_URL, fn),
    async cleanup() {
      const client = new pg.Client({ connectionString: urls.DATABASE_URL });
      await client.connect();
      try {
        for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await client.end();
      }
      await withJetStream(urls.NATS_URL, async (jsm) => {
        for (const name of [
          eventsStreamName(prefix),
          feedStreamName(prefix),
          ingestStreamName(prefix),
          `OBJ_${ingestBucketName(prefix)}`,
          `OBJ_${rpcReplyBucketName(prefix)}`,
        ]) {
          await jsm.streams.delete(name).catch(() => false);
        }
      });
    },
  };
}
