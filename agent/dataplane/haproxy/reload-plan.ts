/**
 * The pure part of a reload: what the next haproxy.cfg and map files hold so
 * that the new worker starts routing exactly as the old one does (its
 * servers written into their backends, its map entries into the map files),
 * with the larger pools and extra TCP ports the waiting apps need. Nothing
 * here touches HAProxy or the disk.
 */
import { MAX_BACKEND_POOL, type CarriedServer } from './render.js';
import type { StatReport } from './runtime-plan.js';

/** What the apps that wait for a reload need. */
export interface ReloadNeeds {
  /** HTTP apps without a pool backend. */
  readonly http: number;
  /** TCP apps without a TCP pool backend. */
  readonly tcp: number;
  /** TCP ports outside what HAProxy binds. */
  readonly ports: readonly number[];
}

export interface ReloadPlan {
  readonly backendPool: number;
  readonly tcpBackendPool: number;
  readonly extraTcpPorts: readonly number[];
  /** Backend → the servers it routes to now (not those draining or in maintenance: they finish on the old worker). */
  readonly servers: ReadonlyMap<string, readonly CarriedServer[]>;
  /** Server count, for the log. */
  readonly carried: number;
}

export function hasNeeds(needs: ReloadNeeds): boolean {
  return needs.http > 0 || needs.tcp > 0 || needs.ports.length > 0;
}

/** A pool that ran out, doubled (or grown by what waits, when more). */
export function grownPool(size: number, waiting: number): number {
  if (waiting <= 0) return size;
  return Math.min(MAX_BACKEND_POOL, Math.max(2 * size, size + waiting));
}

export function planReload(
  stat: StatReport,
  needs: ReloadNeeds,
  recorded: { readonly tcpBackendPool: number; readonly extraTcpPorts: readonly number[]; readonly tcpSection: boolean },
): ReloadPlan {
  const servers = new Map<string, CarriedServer[]>();
  let carried = 0;
  for (const s of stat.servers) {
    if (s.status === 'DRAIN' || s.status.startsWith('MAINT')) continue;
    const address = `${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`;
    const list = servers.get(s.backend) ?? [];
    list.push({ name: s.name, address, weight: Math.max(1, Math.min(256, Math.round(s.weight))) });
    servers.set(s.backend, list);
    carried++;
  }
  const extra = [...new Set([...recorded.extraTcpPorts, ...needs.ports])].sort((a, b) => a - b);
  // A node without a TCP section gets one with the recorded pool size, or larger when more apps wait.
  const tcpPool = recorded.tcpSection ? grownPool(stat.tcpPool.length, needs.tcp) : Math.min(MAX_BACKEND_POOL, Math.max(recorded.tcpBackendPool, needs.tcp));
  return { backendPool: grownPool(stat.pool.length, needs.http), tcpBackendPool: tcpPool, extraTcpPorts: extra, servers, carried };
}

/** A map file's text: one "key value" line per entry, as HAProxy loads it at start. */
export function mapFileText(entries: ReadonlyMap<string, string>): string {
  return [...entries].map(([k, v]) => `${k} ${v}\n`).join('');
}
