/**
 * The pure part of a reload: what the next haproxy.cfg and map files hold so
 * that the new worker starts routing exactly as the old one does (its
 * servers written into their backends, its map entries into the map files),
 * with the larger pools and extra TCP ports and listeners the waiting apps
 * need. Nothing
 * here touches HAProxy or the disk.
 */
import { MAX_BACKEND_POOL, type CarriedServer } from './render.js';
import type { StatReport, StatServer } from './runtime-plan.js';

/** What the apps that wait for a reload need. */
export interface ReloadNeeds {
  /** HTTP apps without a pool backend. */
  readonly http: number;
  /** TCP apps without a TCP pool backend. */
  readonly tcp: number;
  /** TCP ports outside what HAProxy binds. */
  readonly ports: readonly number[];
  /** ADDRESS/PORT (edgeroute.tcpBind) that no listener receives, or a config that looks up ports only. */
  readonly binds?: readonly string[];
}

export interface ReloadPlan {
  readonly backendPool: number;
  readonly tcpBackendPool: number;
  readonly extraTcpPorts: readonly number[];
  readonly extraTcpBinds: readonly string[];
  /** Backend → the servers it routes to now (not those draining or in maintenance: they finish on the old worker). */
  readonly servers: ReadonlyMap<string, readonly CarriedServer[]>;
  /** Server count, for the log. */
  readonly carried: number;
}

export function hasNeeds(needs: ReloadNeeds): boolean {
  return needs.http > 0 || needs.tcp > 0 || needs.ports.length > 0 || (needs.binds?.length ?? 0) > 0;
}

/** A pool that ran out, doubled (or grown by what waits, when more). */
export function grownPool(size: number, waiting: number): number {
  if (waiting <= 0) return size;
  return Math.min(MAX_BACKEND_POOL, Math.max(2 * size, size + waiting));
}

/**
 * `show stat`'s servers that the agent added (named `t` + hex by
 * serverName), in any backend: the pools', the TCP pool's, and any other
 * pool a backend's balance needs.
 */
export function agentServers(showStat: string): (StatServer & { readonly id?: number })[] {
  const lines = showStat.split('\n');
  const header = lines[0]?.replace(/^# /, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  const [px, sv, status, addr, uweight, sid] = ['pxname', 'svname', 'status', 'addr', 'uweight', 'sid'].map(col) as [number, number, number, number, number, number];
  if (px < 0 || sv < 0 || addr < 0) throw new Error('show stat answered without its CSV header');
  const out: (StatServer & { readonly id?: number })[] = [];
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const name = f[sv] ?? '';
    if (!/^t[0-9a-f]+$/.test(name)) continue;
    const where = f[addr] ?? '';
    const colon = where.lastIndexOf(':');
    if (colon <= 0) continue;
    out.push({ backend: f[px]!, name, address: where.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(where.slice(colon + 1)), weight: Number(f[uweight] ?? 1), status: f[status] ?? '', busy: 0, ...(sid >= 0 && Number(f[sid]) > 0 ? { id: Number(f[sid]) } : {}) });
  }
  return out;
}

export function planReload(
  stat: StatReport,
  needs: ReloadNeeds,
  recorded: { readonly tcpBackendPool: number; readonly extraTcpPorts: readonly number[]; readonly extraTcpBinds?: readonly string[]; readonly tcpSection: boolean },
  /** The servers to carry; default: the pools' (stat.servers). */
  running: readonly StatServer[] = stat.servers,
): ReloadPlan {
  const servers = new Map<string, CarriedServer[]>();
  let carried = 0;
  for (const s of running) {
    if (s.status === 'DRAIN' || s.status.startsWith('MAINT')) continue;
    const address = `${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`;
    const list = servers.get(s.backend) ?? [];
    list.push({ name: s.name, address, weight: Math.max(1, Math.min(256, Math.round(s.weight))), ...(s.id === undefined ? {} : { id: s.id }) });
    servers.set(s.backend, list);
    carried++;
  }
  const extra = [...new Set([...recorded.extraTcpPorts, ...needs.ports])].sort((a, b) => a - b);
  const binds = [...new Set([...(recorded.extraTcpBinds ?? []), ...(needs.binds ?? [])])].sort();
  // A node without a TCP section gets one with the recorded pool size, or larger when more apps wait.
  const tcpPool = recorded.tcpSection ? grownPool(stat.tcpPool.length, needs.tcp) : Math.min(MAX_BACKEND_POOL, Math.max(recorded.tcpBackendPool, needs.tcp));
  return { backendPool: grownPool(stat.pool.length, needs.http), tcpBackendPool: tcpPool, extraTcpPorts: extra, extraTcpBinds: binds, servers, carried };
}

/** A map file's text: one "key value" line per entry, as HAProxy loads it at start. */
export function mapFileText(entries: ReadonlyMap<string, string>): string {
  return [...entries].map(([k, v]) => `${k} ${v}\n`).join('');
}
