import type { RpcServer } from "@mam/bus/rpc.ts";
import { operatorSubject, serveOperator } from "@mam/service-kit/operator-rpc.ts";
import { z } from "zod";
import type { IdentityContext } from "../context.ts";
import { resolveKey } from "../read/keys.ts";
import { toTenant } from "../read/queries.ts";

/** `mam tenants list`: every tenant, oldest first, a page at a time (no HTTP route lists tenants). */
export const TENANT_LIST_SUBJECT = operatorSubject("identity", "tenant", "list");

const TenantListRequest = z.object({
  limit: z.number().int().min(1).max(1000).default(100),
  /** The last tenant id of the page before. */
  after: z.uuid().optional(),
});

/** Identity's operator requests (see operator-rpc.ts), authorised by its own key lookup. */
export function registerOperatorRpc(rpc: RpcServer, ctx: IdentityContext): void {
  const resolve = async (keyHash: string) => (await resolveKey(ctx, { keyHash })).principal;
  serveOperator(rpc, TENANT_LIST_SUBJECT, TenantListRequest, resolve, async (req) => {
    let q = ctx.db
      .selectFrom("tenants")
      .selectAll()
      .orderBy("created_at")
      .orderBy("tenant_id")
      .limit(req.limit + 1);
    if (req.after) {
      const from = await ctx.db.selectFrom("tenants").select("created_at").where("tenant_id", "=", req.after).executeTakeFirst();
      if (from) q = q.where((eb) => eb(eb.refTuple("created_at", "tenant_id"), ">", eb.tuple(from.created_at, req.after!)));
    }
    const rows = await q.execute();
    const page = rows.slice(0, req.limit);
    return {
      status: 200,
      body: {
        tenants: page.map((r) => ({ ...toTenant(r), defaultWorkspaceId: r.default_workspace_id })),
        next: rows.length > req.limit ? (page.at(-1)?.tenant_id ?? null) : null,
      },
    };
  });
}
