/** Resolves Mesos agent host names to IP addresses (nginx peers must be IPs), with a TTL cache. */
import { lookup } from 'node:dns/promises';

export class HostResolver {
  private readonly cache = new Map<string, { address: string | null; expires: number }>();

  constructor(private readonly ttlMs = 60_000) {}

  async resolve(names: Iterable<string>): Promise<Map<string, string>> {
    const now = Date.now();
    const result = new Map<string, string>();
    const pending: Promise<void>[] = [];
    for (const name of new Set(names)) {
      const cached = this.cache.get(name);
      if (cached && cached.expires > now) {
        if (cached.address) result.set(name, cached.address);
        continue;
      }
      pending.push(
        lookup(name).then(
          ({ address }) => {
            this.cache.set(name, { address, expires: now + this.ttlMs });
            result.set(name, address);
          },
          () => {
            // Unresolvable hosts are reported by the routing table, per task.
            this.cache.set(name, { address: null, expires: now + Math.min(this.ttlMs, 5_000) });
          },
        ),
      );
    }
    await Promise.all(pending);
    return result;
  }
}
