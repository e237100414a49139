import { IDENTITY_CONTEXT, parseIdentityEvent } from "@mam/contracts/identity-events.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ownEventsProjection } from "@mam/service-kit/projection.ts";
import { ServiceHost } from "@mam/service-kit/service.ts";
import { ensureOperatorKey } from "./commands/operator-key.ts";
import type { IdentityConfig } from "./config.ts";
import type { IdentityContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { IdentityDb } from "./db/schema.ts";
import { applyIdentityEvent, PROJECTION } from "./projections/identity-read-model.ts";
import { RETIRED_COUNTERS, workspaceCounters } from "./projections/workspace-counters.ts";
import { registerIdentityRpc } from "./rpc/handlers.ts";

export interface IdentityOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
  /** Receives a generated operator key, once. main.ts prints it; tests keep it. */
  onGeneratedOperatorKey?: (key: string) => void;
}

/** Tenants, workspaces and keys. */
export class IdentityService extends ServiceHost<IdentityDb, IdentityContext> {
  constructor(
    readonly cfg: IdentityConfig,
    opts: IdentityOptions = {},
  ) {
    super({
      name: "identity",
      env: cfg,
      logger: opts.logger ?? createLogger("identity", cfg.LOG_LEVEL),
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      events: { context: IDENTITY_CONTEXT, projection: PROJECTION },
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => base,
      projections: (ctx) => [
        ownEventsProjection({ name: PROJECTION, context: IDENTITY_CONTEXT, db: ctx.db, parse: parseIdentityEvent, apply: applyIdentityEvent }),
        ...workspaceCounters(ctx),
      ],
      retiredProjections: [RETIRED_COUNTERS],
      prepare: async (ctx) => {
        const generated = await ensureOperatorKey(ctx, cfg.SUPER_ADMIN_KEY);
        if (generated) opts.onGeneratedOperatorKey?.(generated);
      },
      handlers: (server, ctx) => registerIdentityRpc(server, ctx),
    });
  }
}
