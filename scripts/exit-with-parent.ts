/**
 * Preloaded into each service `pnpm start` runs (node --import): its stdin is a pipe from the
 * supervisor, which nothing else reads. When it ends, the supervisor is gone (even killed
 * with SIGKILL, which it cannot catch), and the service stops as on SIGTERM instead of
 * running on unattended.
 */
import type { Socket } from "node:net";

const stdin = process.stdin as NodeJS.ReadStream & Partial<Pick<Socket, "unref">>;
stdin.on("data", () => {});
stdin.once("end", () => process.kill(process.pid, "SIGTERM"));
// Watching must not keep a service alive that is otherwise done (its own graceful stop).
stdin.unref?.();
