/** Stopping the API without letting a client hold up the agent's stop. */
import type { FastifyInstance } from 'fastify';

/** How long requests in flight get to finish when the agent stops, before their connections are closed. */
export const API_CLOSE_GRACE_MS = 2_000;

/**
 * Closes the API, waiting for requests in flight at most `graceMs`: a client
 * that never finishes sending its body, or an operation's progress stream,
 * would otherwise hold up the agent's stop (and a restart) for good.
 */
export async function closeApi(app: FastifyInstance, graceMs = API_CLOSE_GRACE_MS): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
