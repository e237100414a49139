// Tables of the realtime schema, one interface per owner (feed/, ws/, webhooks/), joined below.
// --- feed ---
// --- webhooks ---

export interface RealtimeDb {
  // --- feed tables ---
  // --- webhooks tables ---
}
