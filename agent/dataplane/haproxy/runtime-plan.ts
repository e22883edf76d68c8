/**
 * The pure parts of the HAProxy adapter: server names, weight scaling, what
 * the runtime API's `show` commands answer, and the host-map diff. Nothing
 * here talks to HAProxy.
 */
import { createHash } from 'node:crypto';
import type { AppRoute, Backend } from '../../core/routing-table.js';
import { unappliedSettings } from './lua-records.js';
import { LEASTCONN_POOL_PREFIX, POOL_BACKEND_PREFIX, STICKY_POOL_PREFIX, TCP_POOL_BACKEND_PREFIX } from './render.js';

/**
 * The id a server of a sticky-pool backend gets (`add server ... id N`):
 * HAProxy 2.6 places dynamic servers on the consistent-hash ring by an id
 * it does not set right (in a test, one of three servers got no user), and
 * a stable id from the server's name also puts a task at the same place on
 * every HAProxy node and across agent restarts. 30 bits: two tasks of one
 * app collide about once in a million pairs (the add is then refused).
 */
export function stickyServerId(name: string): number {
  return (Number.parseInt(name.slice(1, 9), 16) % 2 ** 30) + 1;
}

/** HAProxy's server weights run 0-256; 0 would stop new requests, so a routed task gets at least 1. */
export const HAPROXY_MAX_WEIGHT = 256;

/**
 * A stable, valid HAProxy identifier for a task at an address: Marathon task
 * ids are long and hold characters HAProxy refuses. The address is part of
 * it, so a task that moved becomes a new server rather than a stale one.
 */
export function serverName(taskId: string, address: string, port: number): string {
  return `t${createHash('sha256').update(`${taskId}\n${address}\n${port}`).digest('hex').slice(0, 20)}`;
}

/**
 * edgeroute weights (1-10000, default 100) scaled to HAProxy's 1-256,
 * relative to the heaviest task of the version: equal tasks get 256 each, and
 * a warming task at 1% of its weight gets 3, so warm-up keeps its resolution.
 */
export function scaleWeights(backends: readonly Backend[]): Map<string, number> {
  const max = backends.reduce((m, b) => Math.max(m, b.weight), 0);
  const scaled = new Map<string, number>();
  for (const b of backends) scaled.set(b.id, max <= 0 ? 1 : Math.min(HAPROXY_MAX_WEIGHT, Math.max(1, Math.round((b.weight * HAPROXY_MAX_WEIGHT) / max))));
  return scaled;
}

/** Hosts of an app as the map holds them: lower case, no duplicates. */
export function appHosts(route: AppRoute): string[] {
  return [...new Set(route.vhosts.map((h) => h.toLowerCase()))].sort();
}

/**
 * What an HAProxy node does not apply for this app (lua-records.ts applies
 * paths, versions, wildcard hosts and the other settings): sticky sessions
 * and leastconn (a pool backend's balance algorithm is fixed in its
 * config) and the connect timeout (not settable per request in HAProxy 2.6).
 */
export function unsupportedFeatures(route: AppRoute): string[] {
  return unappliedSettings(route);
}

export interface MapEdits {
  /** Host → backend to set (set map, then add map when absent). */
  readonly set: ReadonlyMap<string, string>;
  /** Hosts to delete. */
  readonly del: readonly string[];
}

/**
 * The map edits that take `current` (host → backend, as HAProxy holds it) to
 * `desired` for the hosts in `scope` (the hosts of the apps looked at, old and
 * new): hosts outside the scope are left alone.
 */
export function diffHostMap(current: ReadonlyMap<string, string>, desired: ReadonlyMap<string, string>, scope: Iterable<string>): MapEdits {
  const set = new Map<string, string>();
  const del: string[] = [];
  for (const host of new Set(scope)) {
    const want = desired.get(host);
    const have = current.get(host);
    if (want !== undefined && want !== have) set.set(host, want);
    else if (want === undefined && have !== undefined) del.push(host);
  }
  return { set, del: del.sort() };
}

/** `show map FILE`: "0xADDR key value" lines. */
export function parseShowMap(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length >= 3 && parts[0]!.startsWith('0x') && !entries.has(parts[1]!)) entries.set(parts[1]!, parts[2]!);
  }
  return entries;
}

/** `show map` (no file): the file of the map whose name ends with `/basename`. */
export function findMapFile(text: string, basename: string): string | null {
  for (const line of text.split('\n')) {
    const m = /^-?\d+ \(([^)]+)\)/.exec(line.trim());
    if (m && (m[1] === basename || m[1]!.endsWith(`/${basename}`))) return m[1]!;
  }
  return null;
}

/** `show info`: the worker's Pid and start time, which change when HAProxy restarts. */
export function parseInfoGeneration(text: string): string | null {
  const field = (name: string) => new RegExp(`^${name}: *(\\S+)`, 'm').exec(text)?.[1] ?? null;
  const pid = field('Pid');
  const start = field('Start_time_sec');
  return pid === null ? null : `${pid}@${start ?? '?'}`;
}

export interface StatServer {
  readonly backend: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** The configured weight (uweight). */
  readonly weight: number;
  /** "no check", "UP", "DRAIN", "MAINT", ... */
  readonly status: string;
  /** Current sessions plus queued requests. */
  readonly busy: number;
  /** HAProxy's id of the server (`sid`), when show stat gives it. */
  readonly id?: number;
}

export interface StatReport {
  /** The pool's backends, in number order. */
  readonly pool: readonly string[];
  /** The TCP pool's backends (haproxy-conf --tcp-ports), in number order. */
  readonly tcpPool: readonly string[];
  /** The leastconn and sticky pools' backends (haproxy-conf --leastconn-pool, --sticky-pool). */
  readonly balancePool: readonly string[];
  readonly servers: readonly StatServer[];
}

/** `show stat` CSV: the pool's backends and their servers. */
export function parseShowStat(text: string): StatReport {
  const lines = text.split('\n');
  const header = lines[0]?.replace(/^# /, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  const [px, sv, scur, qcur, status, addr, uweight, weight] = ['pxname', 'svname', 'scur', 'qcur', 'status', 'addr', 'uweight', 'weight'].map(col) as [number, number, number, number, number, number, number, number];
  const sid = col('sid');
  if (px < 0 || sv < 0 || scur < 0) throw new Error('show stat answered without its CSV header');
  const pool: string[] = [];
  const tcpPool: string[] = [];
  const balancePool: string[] = [];
  const servers: StatServer[] = [];
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const backend = f[px];
    if (!backend || !(isPoolBackend(backend) || isTcpPoolBackend(backend) || isBalancePoolBackend(backend))) continue;
    const name = f[sv]!;
    if (name === 'BACKEND') {
      (isPoolBackend(backend) ? pool : isTcpPoolBackend(backend) ? tcpPool : balancePool).push(backend);
      continue;
    }
    if (name === 'FRONTEND') continue;
    const where = addr >= 0 ? (f[addr] ?? '') : '';
    const colon = where.lastIndexOf(':');
    servers.push({
      backend,
      name,
      address: colon > 0 ? where.slice(0, colon).replace(/^\[|\]$/g, '') : where,
      port: colon > 0 ? Number(where.slice(colon + 1)) : 0,
      weight: Number(f[uweight >= 0 ? uweight : weight] ?? 0),
      status: f[status] ?? '',
      busy: Number(f[scur] ?? 0) + Number(qcur >= 0 ? (f[qcur] ?? 0) : 0),
      ...(sid >= 0 && Number(f[sid]) > 0 ? { id: Number(f[sid]) } : {}),
    });
  }
  pool.sort((a, b) => poolIndex(a) - poolIndex(b));
  tcpPool.sort((a, b) => poolIndex(a) - poolIndex(b));
  balancePool.sort((a, b) => (poolKind(a) === poolKind(b) ? poolIndex(a) - poolIndex(b) : poolKind(a) < poolKind(b) ? -1 : 1));
  return { pool, tcpPool, balancePool, servers };
}

export type PoolKind = 'roundrobin' | 'leastconn' | 'sticky';

/** Which balance a pool backend has, by its name. */
export function poolKind(name: string): PoolKind {
  if (name.startsWith(LEASTCONN_POOL_PREFIX)) return 'leastconn';
  if (name.startsWith(STICKY_POOL_PREFIX)) return 'sticky';
  return 'roundrobin';
}

/** The pool an app's backends come from: sticky wins over leastconn (HAProxy has one algorithm per backend). */
export function wantedPoolKind(route: AppRoute): PoolKind {
  if (route.settings?.sticky !== undefined) return 'sticky';
  if (route.settings?.balance === 'leastconn') return 'leastconn';
  return 'roundrobin';
}

export function isBalancePoolBackend(name: string): boolean {
  for (const prefix of [LEASTCONN_POOL_PREFIX, STICKY_POOL_PREFIX]) if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) return true;
  return false;
}

export function isPoolBackend(name: string): boolean {
  return name.startsWith(POOL_BACKEND_PREFIX) && /^\d+$/.test(name.slice(POOL_BACKEND_PREFIX.length));
}

export function isTcpPoolBackend(name: string): boolean {
  return name.startsWith(TCP_POOL_BACKEND_PREFIX) && /^\d+$/.test(name.slice(TCP_POOL_BACKEND_PREFIX.length));
}

function poolIndex(name: string): number {
  return Number(/\d+$/.exec(name)?.[0]);
}

/** `get var proc.NAME`: "proc.NAME: type=sint value=<10000>"; null when the variable is not set. */
export function parseGetVar(text: string): number | null {
  const m = /value=<(\d+)>/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The map key of an app's TCP port when the TCP frontend binds it; else why not. */
export function tcpPortKey(port: number, range: { from: number; to: number } | null): { ok: true; key: string } | { ok: false; why: string } {
  if (range === null) return { ok: false, why: 'HAProxy binds no TCP port range (haproxy-conf --tcp-ports)' };
  if (port < range.from || port > range.to) return { ok: false, why: `it is outside the TCP port range HAProxy binds (${range.from}-${range.to}, haproxy-conf --tcp-ports)` };
  return { ok: true, key: String(port) };
}
