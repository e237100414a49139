import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { filed, ids, keyIssued, keyRevoked, material, twoTenants } from "./fixtures.ts";
import { decideOperatorKey, type EnsureOperatorKey } from "./operator-key.ts";
import { evolve, initial } from "./state.ts";

const spec = deciderSpec({ initial, evolve, decide: decideOperatorKey });
const OPERATOR = { tenantId: null, workspaceId: null };
const configuredKey = material(ids.newKey, "sa_configured");
const stored = (keyId: string, plaintext: string) => keyIssued(material(keyId, plaintext), "super_admin", OPERATOR, "Generated operator key");
const configured: EnsureOperatorKey = { type: "EnsureOperatorKey", source: "configured", key: configuredKey };
const generated: EnsureOperatorKey = { type: "EnsureOperatorKey", source: "generated", key: material(ids.newKey, "sa_random") };

describe("EnsureOperatorKey without SUPER_ADMIN_KEY", () => {
  it("issues the generated key when no operator key is stored", () => {
    const { drafts } = spec
      .given(twoTenants)
      .when(generated)
      .expectEvents([keyIssued(generated.key, "super_admin", OPERATOR, "Generated operator key")]);
    expect(filed(drafts)).toEqual([{ tenantId: null, workspaceId: null, aggregateId: ids.newKey, aggregateVersion: 1 }]);
  });

  it("keeps the stored key on a later start", () => {
    spec
      .given([stored(ids.operatorKey, "sa_first")])
      .when(generated)
      .expectEvents([]);
  });

  it("issues one again if the stored one was revoked", () => {
    spec
      .given([stored(ids.operatorKey, "sa_first"), keyRevoked(ids.operatorKey)])
      .when(generated)
      .expectEvents([keyIssued(generated.key, "super_admin", OPERATOR, "Generated operator key")]);
  });
});

describe("EnsureOperatorKey with SUPER_ADMIN_KEY", () => {
  const issuedConfigured = keyIssued(configuredKey, "super_admin", OPERATOR, "SUPER_ADMIN_KEY");

  it("issues the configured key when none is stored", () => {
    spec.given(twoTenants).when(configured).expectEvents([issuedConfigured]);
  });

  it("keeps the configured key when it is stored already", () => {
    spec
      .given([issuedConfigured])
      .when({ ...configured, key: material(ids.operatorKey2, "sa_configured") })
      .expectEvents([]);
  });

  it("revokes every other operator key and keeps the configured one", () => {
    const history = [
      stored(ids.operatorKey, "sa_first"),
      { ...issuedConfigured, data: { ...issuedConfigured.data, keyId: ids.operatorKey2 } } as typeof issuedConfigured,
    ];
    const { drafts } = spec
      .given(history)
      .when(configured)
      .expectEvents([keyRevoked(ids.operatorKey)]);
    expect(filed(drafts)).toEqual([{ tenantId: null, workspaceId: null, aggregateId: ids.operatorKey, aggregateVersion: 2 }]);
  });

  it("replaces a generated key by the configured one", () => {
    spec
      .given([stored(ids.operatorKey, "sa_first")])
      .when(configured)
      .expectEvents([keyRevoked(ids.operatorKey), issuedConfigured]);
  });

  it("leaves tenants' keys alone", () => {
    spec.given(twoTenants).when(configured).expectEvents([issuedConfigured]);
    expect(
      spec
        .given(twoTenants)
        .when(configured)
        .outcome.events.some((e) => e.type === "KeyRevoked"),
    ).toBe(false);
  });
});
