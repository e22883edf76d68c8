/**
 * Renders templates/haproxy.cfg.hbs into a folder that `haproxy -W -f
 * DIR/haproxy.cfg` runs: the static part of an HAProxy routing node. What
 * changes with Marathon (which host goes to which backend, the servers) is
 * the agent's, through the admin socket; nothing here is about apps.
 */
import Handlebars from 'handlebars';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LUA_DIR, TEMPLATES_DIR } from '../../project-paths.js';
import { ACME_CHALLENGES_MAP_FILE } from './acme-challenge-map.js';
import { checkCfgPath, parseBind } from './bind-address.js';
import { CONF_RECORD_FILE, confRecord } from './conf-record.js';
import { CERTS_LIST_FILE } from './haproxy-certs.js';
import { luaLoader, LUA_LOADER_FILE, RULES_MAP_FILE, VERSIONS_MAP_FILE, WILDCARDS_MAP_FILE } from './lua-loader.js';
import { LUA_TARGET } from './lua-records.js';
import { LATENCY_BUCKETS, LATENCY_BUCKETS_MAP_FILE, LATENCY_KEY_STRIDE, LATENCY_TABLE, latencyBucketsMap } from './latency-histogram.js';
import { listenHost, parseBindKey, receives } from './tcp-binds.js';
import { upstreamIdleTimeoutSeconds } from '../upstream-idle-timeout.js';

/** Names the agent relies on: the pool's backends are `pool-1` ... `pool-N`. */
export const POOL_BACKEND_PREFIX = 'pool-';
export const NO_APP_BACKEND = 'edgeroute-no-app';
export const HTTP_FRONTEND = 'edgeroute-http';
export const HOSTS_MAP_FILE = 'hosts.map';
/** TCP (edgeroute.tcpPort): the pool's backends are `tcp-pool-1` ... `tcp-pool-N`, found by port in tcp-ports.map. */
export const TCP_POOL_BACKEND_PREFIX = 'tcp-pool-';
export const TCP_FRONTEND = 'edgeroute-tcp';
export const TCP_PORTS_MAP_FILE = 'tcp-ports.map';
/** HAProxy process variables holding the --tcp-ports range, read by the agent with `get var`. */
export const TCP_PORTS_FROM_VAR = 'proc.edgeroute_tcp_ports_from';
export const TCP_PORTS_TO_VAR = 'proc.edgeroute_tcp_ports_to';
/** TCP ports bound besides the range (added by the agent's reloads), "P1/P2/...". */
export const TCP_EXTRA_PORTS_VAR = 'proc.edgeroute_tcp_extra_ports';
/** The TCP frontend's listen hosts, "H1|H2" (tcp-binds.ts listenHost); also tells that it looks connections up by address and port. */
export const TCP_HOSTS_VAR = 'proc.edgeroute_tcp_hosts';
/** The ADDRESS/PORT listeners the agent added for apps with edgeroute.tcpBind, "A1/P1|A2/P2". */
export const TCP_BINDS_VAR = 'proc.edgeroute_tcp_binds';
/** Every server's pool-purge-delay in ms (from --upstream-idle-timeout), for the servers the agent adds. */
export const POOL_PURGE_DELAY_VAR = 'proc.edgeroute_pool_purge_delay_ms';
/** What servers were given before the variable existed (a config from an older haproxy-conf). */
export const LEGACY_POOL_PURGE_DELAY_MS = 5_000;
export const DEFAULT_TCP_BACKEND_POOL = 32;
export const DEFAULT_BACKEND_POOL = 64;
/** About 10 KB of HAProxy memory each (PLATFORM-NOTES): 100,000 is 1 GB. */
export const MAX_BACKEND_POOL = 100_000;
/** A unix socket path is at most 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;

/**
 * Pools for apps whose balance HAProxy fixes per backend: edgeroute.balance=leastconn
 * (`pool-lc-N`, balance leastconn) and edgeroute.sticky (`pool-sticky-N`,
 * consistent hash of the user's sticky cookie, which the Lua action reads or issues).
 */
export const LEASTCONN_POOL_PREFIX = 'pool-lc-';
export const STICKY_POOL_PREFIX = 'pool-sticky-';
export const DEFAULT_BALANCE_POOL = 8;
/** The txn variable the sticky pool hashes: the app's sticky cookie value. */
export const STICKY_VAR = 'txn.edgeroute_sticky';

/**
 * HAProxy 2.6 has no idle timeout for its connections to servers. It purges
 * them instead: every pool-purge-delay, each server's idle connections beyond
 * what its recent periods used are halved, whichever they are, not the oldest
 * (server.c, srv_cleanup_idle_conns: the estimate of what is needed halves each
 * period too). So the one left idle after its server's last request is closed
 * 2 to 3 periods later, and the last of a burst of N about log2(N) + 2 periods
 * after it. An eighth of the idle timeout closes both within it for bursts of
 * up to about 60 connections to a task. Measured against a task closing at
 * 300 ms (`npm run bench -- idle-race`): a steady trickle lost 0 of 200 POSTs
 * with a 95 ms delay, 14 with 120 ms; after bursts of 10 or 40, a third
 * (83 ms) lost 1 to 4 of 240-480 in 4 runs, an eighth (31 ms) 0 in 6.
 */
const PURGES_PER_IDLE_TIMEOUT = 8;

export function poolPurgeDelayMs(upstreamIdleTimeoutSeconds: number): number {
  return Math.max(1, Math.floor((upstreamIdleTimeoutSeconds * 1000) / PURGES_PER_IDLE_TIMEOUT));
}

export function poolBackendName(index: number): string {
  return `${POOL_BACKEND_PREFIX}${index}`;
}

export function tcpPoolBackendName(index: number): string {
  return `${TCP_POOL_BACKEND_PREFIX}${index}`;
}

/** `FROM-TO` (e.g. 10000-10100): the TCP ports one frontend binds for edgeroute.tcpPort. */
export function parseTcpPortRange(raw: string): { from: number; to: number } {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(raw);
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65_535 || from > to) throw new Error(`--tcp-ports must be FROM-TO with 1 <= FROM <= TO <= 65535 (e.g. 10000-10100), got "${raw}"`);
  return { from, to };
}

export interface HaproxyConfOptions {
  readonly outDir: string;
  /** Public HTTP listen addresses: PORT, HOST:PORT, [IPv6]:PORT, unix:/path. */
  readonly listen: readonly string[];
  /** The runtime API's unix socket; default DIR/run/admin.sock. */
  readonly adminSocket?: string | null;
  /** A group that may use the admin socket too (mode 660), e.g. the agent's. */
  readonly adminSocketGroup?: string | null;
  /** Public TLS listen addresses; they need tlsCert and tlsKey. */
  readonly tlsListen?: readonly string[];
  readonly tlsCert?: string | null;
  readonly tlsKey?: string | null;
  /** How many empty backends to pre-declare for apps. */
  readonly backendPool?: number;
  /** A request header holding the client's region (a CDN's), for split policies' region rules. */
  readonly regionHeader?: string | null;
  /** Also send X-Edgeroute-Version to clients (as nginx-conf --version-header). */
  readonly versionResponseHeader?: boolean;
  /** Log every HTTP request (HAProxy's httplog format after the worker's PID) and TCP connection, at info, where the events go. */
  readonly requestLog?: boolean;
  /** Seconds an idle connection to a task is kept at most (as nginx-conf's; default 4): poolPurgeDelayMs. */
  readonly upstreamIdleTimeoutSeconds?: number;
  /**
   * Send a request whose task closed the connection without answering (it
   * died under it) again, to another task, unless POST, PATCH or LOCK, as
   * nginx does: HAProxy's L7 retries, which copy every request sent.
   */
  readonly retryUnanswered?: boolean;
  /** How many for apps with edgeroute.balance=leastconn, and for apps with edgeroute.sticky. */
  readonly leastconnPool?: number;
  readonly stickyPool?: number;
  /** TCP ports (FROM-TO) one TCP frontend binds on the listen hosts for edgeroute.tcpPort; null: none. */
  readonly tcpPorts?: string | null;
  /** How many empty TCP backends to pre-declare for TCP apps (with tcpPorts). */
  readonly tcpBackendPool?: number;
  /** The user the workers run as once started as root (its group too, unless group is given). */
  readonly user?: string | null;
  readonly group?: string | null;
  /** Seconds an upgraded connection may stay idle. */
  readonly websocketIdleTimeoutSeconds?: number;
  /** The haproxy binary, recorded for the agent's `haproxy -c` before a reload; default /usr/sbin/haproxy. */
  readonly haproxy?: string | null;
  /** TCP ports one listener each binds besides --tcp-ports (the agent adds them, with a reload, for apps outside the range). */
  readonly extraTcpPorts?: readonly number[];
  /** ADDRESS/PORT listeners (tcp-binds.ts bindKey) the TCP frontend binds for apps with edgeroute.tcpBind (the agent adds them, with a reload). */
  readonly extraTcpBinds?: readonly string[];
  /** Servers written into pool backends (backend → servers): the agent carries its run-time servers across its reloads. */
  readonly servers?: ReadonlyMap<string, readonly CarriedServer[]>;
  /** Use the DIR/tls/default.pem already written instead of reading --tls-cert and --tls-key (the agent's re-render). */
  readonly reuseTlsBundle?: boolean;
}

/** A server as the pool backend's config declares it, with the options the agent gives dynamic servers. */
export interface CarriedServer {
  readonly name: string;
  /** IP:PORT, IPv6 in brackets. */
  readonly address: string;
  readonly weight: number;
  /** The id HAProxy gave it: kept, so a sticky pool's consistent-hash ring is the same after a reload (stickyServerId). */
  readonly id?: number;
}

export interface HaproxyConfFiles {
  readonly dir: string;
  readonly confPath: string;
  readonly hostsMap: string;
  readonly adminSocket: string;
  readonly pidFile: string;
  /** Where to point `haproxy -S` for the master CLI (the systemd unit does). */
  readonly masterSocket: string;
  readonly backendPool: number;
  /** tcp-ports.map, the range (from and to null without --tcp-ports), the extra ports and the TCP pool size; null without TCP ports. */
  readonly tcp: { readonly map: string; readonly from: number | null; readonly to: number | null; readonly extraPorts: readonly number[]; readonly extraBinds: readonly string[]; readonly pool: number } | null;
  /** Folders to create. */
  readonly dirs: readonly string[];
  /** Files to write; `keep`: only when absent (the map is the agent's once it runs). */
  readonly files: readonly { readonly path: string; readonly content: string; readonly mode: number; readonly keep?: boolean }[];
}

export function renderHaproxyConf(opts: HaproxyConfOptions): HaproxyConfFiles {
  const rendered = haproxyConfFiles(opts);
  for (const dir of rendered.dirs) mkdirSync(dir, { recursive: true });
  for (const file of rendered.files) {
    if (file.keep && existsSync(file.path)) continue;
    writeFileSync(file.path, file.content, { mode: file.mode });
    chmodSync(file.path, file.mode);
  }
  return rendered;
}

/** Renders the folder's files into memory; nothing is written. */
export function haproxyConfFiles(opts: HaproxyConfOptions): HaproxyConfFiles {
  if (opts.outDir === '') throw new Error('--out is needed');
  const dir = checkCfgPath(resolve(opts.outDir), '--out');
  if (opts.listen.length === 0) throw new Error('at least one --listen address is needed');
  const listen = opts.listen.map(parseBind);
  const tlsListen = (opts.tlsListen ?? []).map(parseBind);
  const runDir = join(dir, 'run');
  const adminSocket = checkCfgPath(resolve(opts.adminSocket ?? join(runDir, 'admin.sock')), '--admin-socket');
  if (Buffer.byteLength(adminSocket) > MAX_SOCKET_PATH) throw new Error(`--admin-socket ${adminSocket} is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes)`);
  const masterSocket = join(runDir, 'master.sock');
  const group = opts.adminSocketGroup ?? null;
  if (group !== null && !NAME.test(group)) throw new Error(`--admin-socket-group "${group}" is not a group name`);
  const user = opts.user ?? null;
  if (user !== null && !NAME.test(user)) throw new Error(`--user "${user}" is not a user name`);
  const workerGroup = opts.group ?? user;
  if (workerGroup !== null && !NAME.test(workerGroup)) throw new Error(`group "${workerGroup}" is not a group name`);
  const backendPool = opts.backendPool ?? DEFAULT_BACKEND_POOL;
  if (!Number.isInteger(backendPool) || backendPool < 0 || backendPool > MAX_BACKEND_POOL) {
    throw new Error(`--backend-pool must be a whole number from 0 to ${MAX_BACKEND_POOL}`);
  }
  const balancePools = { leastconn: opts.leastconnPool ?? DEFAULT_BALANCE_POOL, sticky: opts.stickyPool ?? DEFAULT_BALANCE_POOL };
  for (const [name, size] of Object.entries(balancePools)) {
    if (!Number.isInteger(size) || size < 0 || size > MAX_BACKEND_POOL) throw new Error(`--${name}-pool must be a whole number from 0 to ${MAX_BACKEND_POOL}`);
  }
  const regionHeader = opts.regionHeader ?? null;
  if (regionHeader !== null && !/^[A-Za-z0-9-]{1,64}$/.test(regionHeader)) throw new Error(`--region-header "${regionHeader}" is not a header name (letters, digits, -)`);
  const purgeDelayMs = poolPurgeDelayMs(upstreamIdleTimeoutSeconds(opts.upstreamIdleTimeoutSeconds));
  const tunnelTimeout = opts.websocketIdleTimeoutSeconds ?? 3600;
  if (!Number.isInteger(tunnelTimeout) || tunnelTimeout < 1 || tunnelTimeout > 7 * 86_400) throw new Error('--websocket-idle-timeout must be 1 to 604800 whole seconds');

  let tcp: HaproxyConfFiles['tcp'] = null;
  let tcpBinds: string[] = [];
  const extraTcpPorts = [...new Set(opts.extraTcpPorts ?? [])].sort((a, b) => a - b);
  for (const port of extraTcpPorts) if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`an extra TCP port must be 1 to 65535, got ${port}`);
  const extraTcpBinds = [...new Set(opts.extraTcpBinds ?? [])].sort();
  for (const key of extraTcpBinds) if (parseBindKey(key) === null) throw new Error(`an extra TCP listener must be ADDRESS/PORT, got ${JSON.stringify(key)}`);
  let tcpHosts: string[] = [];
  if (opts.tcpPorts || extraTcpPorts.length > 0 || extraTcpBinds.length > 0) {
    const range = opts.tcpPorts ? parseTcpPortRange(opts.tcpPorts) : null;
    const extraPorts = extraTcpPorts.filter((p) => range === null || p < range.from || p > range.to);
    const pool = opts.tcpBackendPool ?? DEFAULT_TCP_BACKEND_POOL;
    if (!Number.isInteger(pool) || pool < 0 || pool > MAX_BACKEND_POOL) throw new Error(`--tcp-backend-pool must be a whole number from 0 to ${MAX_BACKEND_POOL}`);
    // The hosts of the HTTP listen addresses, each binding the whole range and each extra port (unix sockets have no ports).
    const hosts = [...new Set(listen.filter((l) => !l.bind.startsWith('unix@')).map((l) => l.bind.slice(0, l.bind.lastIndexOf(':'))))];
    tcpHosts = hosts.map(listenHost);
    tcpBinds = hosts.flatMap((h) => [...(range ? [`${h}:${range.from}-${range.to}`] : []), ...extraPorts.map((p) => `${h}:${p}`)]);
    if ((range !== null || extraPorts.length > 0) && tcpBinds.length === 0) throw new Error('--tcp-ports needs a --listen address with a host and port (not only unix sockets)');
    // An address-bound port gets a listener of its own unless a listen host already receives it with that destination.
    const hostListeners = { hosts: tcpHosts, range, extraPorts: new Set(extraPorts), binds: new Set<string>() };
    for (const key of extraTcpBinds) {
      const { address, port } = parseBindKey(key)!;
      if (!receives(hostListeners, address, port)) tcpBinds.push(`${address.includes(':') ? `[${address}]` : address}:${port}`);
    }
    tcp = { map: join(dir, TCP_PORTS_MAP_FILE), from: range?.from ?? null, to: range?.to ?? null, extraPorts, extraBinds: extraTcpBinds, pool };
  } else if (opts.tcpBackendPool !== undefined && opts.tcpBackendPool !== DEFAULT_TCP_BACKEND_POOL) {
    throw new Error('--tcp-backend-pool is for --tcp-ports, which is not given');
  }
  const hostsMap = join(dir, HOSTS_MAP_FILE);
  const pidFile = join(runDir, 'haproxy.pid');
  const dirs = [dir, runDir, dirname(adminSocket)];
  const files: { path: string; content: string; mode: number; keep?: boolean }[] = [];
  let tls: { pem: string; crtList: string } | null = null;
  if (tlsListen.length > 0) {
    // HAProxy reads the certificate and its key from one PEM file.
    const pem = join(dir, 'tls', 'default.pem');
    if (!opts.reuseTlsBundle) files.push({ path: pem, content: tlsBundle(opts.tlsCert ?? null, opts.tlsKey ?? null), mode: 0o600 });
    else if (!existsSync(pem)) throw new Error(`${pem} does not exist: run edgeroute haproxy-conf with --tls-cert and --tls-key`);
    // Empty on disk: the agent adds the --certs certificates through the runtime API (haproxy-certs.ts), keys in memory only.
    const crtList = join(dir, 'tls', CERTS_LIST_FILE);
    files.push({ path: crtList, content: '', mode: 0o644 });
    dirs.push(dirname(pem));
    tls = { pem, crtList };
  } else if (opts.tlsCert || opts.tlsKey) {
    throw new Error('--tls-cert and --tls-key are for --tls-listen, which is not given');
  }
  files.push({ path: hostsMap, content: '', mode: 0o644, keep: true });
  // The Lua action's records and each backend's version: the agent's at run time, like hosts.map.
  const rulesMap = join(dir, RULES_MAP_FILE);
  const versionsMap = join(dir, VERSIONS_MAP_FILE);
  const wildcardsMap = join(dir, WILDCARDS_MAP_FILE);
  const loader = join(dir, LUA_LOADER_FILE);
  files.push({ path: rulesMap, content: '', mode: 0o644, keep: true });
  files.push({ path: versionsMap, content: '', mode: 0o644, keep: true });
  files.push({ path: wildcardsMap, content: '', mode: 0o644, keep: true });
  files.push({ path: loader, content: luaLoader({ luaDir: LUA_DIR, rulesMap, httpsPort: httpsPort(tlsListen.map((l) => l.bind)), regionHeader }), mode: 0o644 });
  if (tcp) files.push({ path: tcp.map, content: '', mode: 0o644, keep: true });
  // Empty on disk: challenges live minutes, the agent fills the map from Redis at run time (acme-challenge-map.ts).
  const acmeChallengesMap = join(dir, ACME_CHALLENGES_MAP_FILE);
  files.push({ path: acmeChallengesMap, content: '', mode: 0o644 });
  const latencyMap = join(dir, LATENCY_BUCKETS_MAP_FILE);
  files.push({ path: latencyMap, content: latencyBucketsMap(), mode: 0o644 });
  // One entry per HTTP backend and bucket at most (the Lua target's and the no-app one's too); beyond, HAProxy drops the oldest.
  const httpBackends = backendPool + balancePools.leastconn + balancePools.sticky + 2;

  const confPath = join(dir, 'haproxy.cfg');
  const template = Handlebars.create().compile(readFileSync(join(TEMPLATES_DIR, 'haproxy.cfg.hbs'), 'utf8'), { noEscape: true, strict: true });
  const conf = template({
    confPath,
    pidFile,
    adminSocket: { path: adminSocket, mode: group === null ? '600' : '660', group },
    user,
    group: workerGroup,
    connectTimeout: '2s',
    tunnelTimeout: `${tunnelTimeout}s`,
    listen: listen.map((l) => l.bind),
    tlsListen: tlsListen.map((l) => l.bind),
    tls,
    hostsMap,
    acmeChallengesMap,
    lua: { loader, rulesMap, versionsMap, wildcardsMap, target: LUA_TARGET },
    versionResponseHeader: opts.versionResponseHeader === true,
    requestLog: opts.requestLog === true,
    retryUnanswered: opts.retryUnanswered === true,
    poolPurgeDelay: { ms: purgeDelayMs, variable: POOL_PURGE_DELAY_VAR },
    latency: { map: latencyMap, table: LATENCY_TABLE, stride: LATENCY_KEY_STRIDE, overflow: LATENCY_BUCKETS - 1, size: Math.max(1_024, httpBackends * LATENCY_KEY_STRIDE) },
    poolPrefix: POOL_BACKEND_PREFIX,
    pool: [
      ...Array.from({ length: backendPool }, (_, i) => ({ ...backendBlock(poolBackendName(i + 1), opts.servers), balance: ['balance roundrobin'] })),
      ...Array.from({ length: balancePools.leastconn }, (_, i) => ({ ...backendBlock(`${LEASTCONN_POOL_PREFIX}${i + 1}`, opts.servers), balance: ['balance leastconn'] })),
      ...Array.from({ length: balancePools.sticky }, (_, i) => ({ ...backendBlock(`${STICKY_POOL_PREFIX}${i + 1}`, opts.servers), balance: [`balance hash var(${STICKY_VAR})`, 'hash-type consistent'] })),
    ],
    tcp: tcp && {
      ...tcp,
      binds: tcpBinds,
      range: tcp.from !== null,
      extraPortsVar: tcp.extraPorts.length > 0 ? { name: TCP_EXTRA_PORTS_VAR, value: tcp.extraPorts.join('/') } : null,
      hostsVar: { name: TCP_HOSTS_VAR, value: tcpHosts.join('|') },
      bindsVar: tcp.extraBinds.length > 0 ? { name: TCP_BINDS_VAR, value: tcp.extraBinds.join('|') } : null,
      fromVar: TCP_PORTS_FROM_VAR,
      toVar: TCP_PORTS_TO_VAR,
      frontend: TCP_FRONTEND,
      poolPrefix: TCP_POOL_BACKEND_PREFIX,
      backends: Array.from({ length: tcp.pool }, (_, i) => backendBlock(tcpPoolBackendName(i + 1), opts.servers)),
    },
  });
  files.push({ path: confPath, content: conf, mode: 0o644 });
  // What it was rendered with, so the agent can render the same config with a larger pool (never the servers: they are state).
  files.push({ path: join(dir, CONF_RECORD_FILE), content: confRecord({ ...opts, outDir: dir, adminSocket, extraTcpPorts: tcp?.extraPorts ?? [], extraTcpBinds: tcp?.extraBinds ?? [] }), mode: 0o644 });
  return { dir, confPath, hostsMap, adminSocket, pidFile, masterSocket, backendPool, tcp, dirs: [...new Set(dirs)], files };
}

const NAME = /^[a-z_][a-z0-9_-]{0,31}\$?$/i;

/** The port edgeroute.redirectHttps sends clients to: the first TLS listener's, else 443. */
function httpsPort(tlsBinds: readonly string[]): number {
  const port = /:(\d+)$/.exec(tlsBinds[0] ?? '')?.[1];
  return port === undefined ? 443 : Number(port);
}

function backendBlock(name: string, servers: HaproxyConfOptions['servers']): { name: string; servers: readonly (Omit<CarriedServer, 'id'> & { id: number | null })[] } {
  const list = servers?.get(name) ?? [];
  for (const s of list) {
    if (!/^t[0-9a-f]+$/.test(s.name) || !/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/.test(s.address) || !Number.isInteger(s.weight)) {
      throw new Error(`cannot write server ${JSON.stringify(s)} into backend ${name}`);
    }
    if (s.id !== undefined && !(Number.isInteger(s.id) && s.id > 0)) throw new Error(`cannot write server ${JSON.stringify(s)} into backend ${name}`);
  }
  return { name, servers: list.map((s) => ({ ...s, id: s.id ?? null })) };
}

function tlsBundle(cert: string | null, key: string | null): string {
  if (!cert || !key) throw new Error('--tls-listen needs --tls-cert and --tls-key');
  const parts = [cert, key].map((file) => {
    if (!existsSync(file)) throw new Error(`TLS file ${file} does not exist`);
    const text = readFileSync(file, 'utf8');
    return text.endsWith('\n') ? text : `${text}\n`;
  });
  return parts.join('');
}
