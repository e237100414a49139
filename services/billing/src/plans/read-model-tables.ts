/**
 * Every table billing's read model (billing-read-model) writes, with its dedupe record: what
 * an operator's rebuild (`mam rebuild billing`) empties before replaying the stream. The
 * metrics counters keep their own checkpoints and are not part of it.
 */
export const READ_MODEL_TABLES = ["tenant_plans", "default_limits", "tenant_billing", "applied_events"];
