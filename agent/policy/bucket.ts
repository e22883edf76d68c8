/**
 * The sticky percentage bucket: hash(seed, app, key) mod 10000. The Lua plugin
 * computes the same hash (lua/edgeroute/policy/bucket.lua), so one user lands
 * in the same bucket on every worker and every routing node, and tools can
 * tell which users a percentage takes. FNV-1a over the bytes, then
 * murmur3's finaliser so that similar keys spread evenly.
 */

export const BUCKETS = 10_000;

export function bucketOf(seed: string, app: string, key: string): number {
  const bytes = Buffer.from(`${seed}\u0000${app}\u0000${key}`, 'utf8');
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % BUCKETS;
}

/** A percentage (0–100, steps of 0.01) takes the buckets below this bound. */
export function bucketBound(percentage: number): number {
  return Math.round(percentage * 100);
}
