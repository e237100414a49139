import type { BaseContext } from "@mam/service-kit/service.ts";
import type { IdentityDb } from "./db/schema.ts";

/** What every command, query and projection of identity needs: the kit's base context. */
export type IdentityContext = BaseContext<IdentityDb>;
