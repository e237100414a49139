// Tables of the realtime schema, one interface per owner (feed/, ws/, webhooks/), joined below.
// --- feed ---
// --- ws ---
// --- webhooks ---

export interface RealtimeDb {
  // --- feed tables ---
  // --- ws tables ---
  // --- webhooks tables ---
}
