/**
 * How long a data plane keeps an idle kept-alive connection to a task for
 * the next request (nginx-conf and haproxy-conf --upstream-idle-timeout).
 * Below the apps' own idle timeout (Node's and uvicorn's 5 s), the data
 * plane, not the task, closes it: a task that closes an idle connection can
 * do so just as the router sends the next request on it, and neither data
 * plane sends a POST it has written again (the client gets 502, or on an
 * HAProxy node its kept-alive connection is closed).
 */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS = 4;

/** The timeout, checked: 0.1 to 3600 seconds (default 4). */
export function upstreamIdleTimeoutSeconds(seconds: number | undefined): number {
  const value = seconds ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS;
  if (!(value >= 0.1 && value <= 3600)) throw new Error('the upstream idle timeout must be 0.1 to 3600 seconds');
  return value;
}
