/**
 * The latency histogram of an HAProxy node, so that its dashboard and
 * `edgeroute compare` show p50/p99 per app version as nginx nodes do.
 * HAProxy 2.6 keeps no percentile (its stats hold averages over the last
 * 1,024 requests), so haproxy.cfg counts one itself, in C, per backend:
 *
 * - the frontend notes when a request is taken (`txn.edgeroute_t0`, the date
 *   in µs), before routing, as nginx's request start;
 * - when a task's response headers arrive, the elapsed µs go through
 *   latency-buckets.map (integer ranges, one per bound of LATENCY_BOUNDS,
 *   nginx's plugin's bounds) to a bucket number, and the frontend adds one to
 *   the gpc0 of the entry `backend id × 16 + bucket` of the stick table
 *   `edgeroute-latency`.
 *
 * Per response: a date read, a subtraction, a look-up among 14 integer
 * ranges, two additions, a stick-table look-up and an increment; no Lua, no
 * memory beyond the table's entries (at most one per backend and bucket).
 * The agent reads the table (`show table edgeroute-latency`) with show stat
 * and credits each backend's buckets to its app version like its other
 * counters. Responses HAProxy makes itself (a 503 without a server, a 504
 * after the server timeout) are not in the histogram: http-response rules
 * see the tasks' responses only (http-after-response cannot count in 2.6).
 */

/** Upper bounds, seconds: the nginx plugin's (lua/edgeroute/metrics.lua), so nodes of both kinds add up. */
export const LATENCY_BOUNDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets per backend: one per bound, then one above the last. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS.length + 1;
/** A backend's entries are `id × LATENCY_KEY_STRIDE + bucket`. */
export const LATENCY_KEY_STRIDE = 16;
export const LATENCY_TABLE = 'edgeroute-latency';
export const LATENCY_BUCKETS_MAP_FILE = 'latency-buckets.map';

/** latency-buckets.map: "LOW:HIGH BUCKET" in µs; the first range is open below (a clock step back), above the last is the map's default. */
export function latencyBucketsMap(): string {
  let low: number | null = null;
  const lines = ['# µs since the request was taken → latency bucket (written by edgeroute haproxy-conf)'];
  LATENCY_BOUNDS.forEach((bound, i) => {
    const high = Math.round(bound * 1e6);
    lines.push(`${low === null ? '' : low}:${high} ${i}`);
    low = high + 1;
  });
  return `${lines.join('\n')}\n`;
}

/** Backend id → its bucket counts, from `show table edgeroute-latency`; null when HAProxy has no such table (a haproxy.cfg from before). */
export function parseLatencyTable(reply: string): Map<number, number[]> | null {
  if (!reply.startsWith('# table:')) return null;
  const byBackend = new Map<number, number[]>();
  const entry = /key=(\d+) .*?gpc0=(\d+)/;
  for (const line of reply.split('\n')) {
    const m = entry.exec(line);
    if (!m) continue;
    const key = Number(m[1]);
    const bucket = key % LATENCY_KEY_STRIDE;
    if (bucket >= LATENCY_BUCKETS) continue;
    const id = (key - bucket) / LATENCY_KEY_STRIDE;
    let counts = byBackend.get(id);
    if (!counts) byBackend.set(id, (counts = new Array<number>(LATENCY_BUCKETS).fill(0)));
    counts[bucket] = Number(m[2]);
  }
  return byBackend;
}
