/**
 * What HAProxy's Lua (lua/edgeroute/haproxy/) reads, as the agent writes it
 * into rules.map over the runtime API. Pure: routes, the backend of each
 * app version and the apps' compiled policies in, map entries out.
 *
 * Hosts of one simple app (one version, at "/" only, no setting HAProxy
 * applies per request) keep HAProxy's C path: hosts.map sends them straight
 * to the app's backend. Every other host maps to LUA_TARGET, and the Lua
 * action routes it from these records:
 *
 *   h:HOST  p=PREFIX:APP,...                 the apps of a host by path prefix
 *   a:APP   d=DEFAULT|v=VERSION:BACKEND,...|s=1|r=1|m=BYTES|t=MS|f=CIDR,...|b=REALM|u=USER:HASH,...
 *   p:APP   the app's split policy (policyRecord)
 *   v       bumped after every edit: the Lua states drop what they decoded
 *
 * Items and parts are percent-encoded, so neither a separator (| , : =) nor
 * what HAProxy's CLI splits on (space, ;, \) occurs inside one. A record
 * longer than a runtime-API line may be is split: KEY → "#N", KEY#1..KEY#N.
 */
import type { AppRoute } from '../../core/routing-table.js';
import type { RouteSettings } from '../../core/route-settings.js';
import type { Policy } from '../../policy/policy-check.js';
import { bucketBound } from '../../policy/bucket.js';

/** The hosts.map value of hosts the Lua action routes. */
export const LUA_TARGET = 'edgeroute-lua';
/** The rules.map entry the agent bumps after each edit. */
export const RULES_VERSION_KEY = 'v';
/** Longest value of one rules.map entry: a runtime-API line holds at most about 16 KB. */
export const MAX_ENTRY_VALUE = 4000;

/** Percent-encodes all but letters, digits and - . _ ~. */
export function encodePart(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Settings the Lua action applies per request. */
const LUA_SETTINGS: readonly (keyof RouteSettings)[] = ['stripPath', 'redirectHttps', 'redirectRoot', 'hsts', 'maxBodySize', 'allowFrom', 'readTimeout', 'sendTimeout', 'sticky', 'basicAuth'];

/** Per-route settings an HAProxy node cannot apply (the agent warns once per app, README lists them). */
export function unappliedSettings(route: AppRoute): string[] {
  const s = route.settings;
  if (!s) return [];
  const out: string[] = [];
  // A backend has one algorithm: the sticky pool hashes the cookie, so sticky users are not also balanced by leastconn.
  if (s.sticky !== undefined && s.balance === 'leastconn') out.push('edgeroute.balance=leastconn together with edgeroute.sticky');
  if (s.connectTimeout !== undefined) out.push('edgeroute.connectTimeout');
  return out;
}

/** Whether the app's requests need the Lua action: paths, several versions, or settings applied per request. */
export function needsLua(route: AppRoute): boolean {
  if (Object.keys(route.versions).length > 1) return true;
  if (route.paths && Object.values(route.paths).some((ps) => ps.some((p) => p !== '/'))) return true;
  const s = route.settings;
  return s !== undefined && LUA_SETTINGS.some((k) => s[k] !== undefined);
}

/**
 * HAProxy has one server-side inactivity timeout (`timeout server`, set per
 * request with `http-request set-timeout server`): readTimeout and
 * sendTimeout both set it, the larger when both are given. Milliseconds.
 */
export function serverTimeoutMs(settings: RouteSettings | undefined): number | null {
  const seconds = [settings?.readTimeout, settings?.sendTimeout].filter((s): s is number => s !== undefined);
  return seconds.length === 0 ? null : Math.max(1, Math.round(Math.max(...seconds) * 1000));
}

/** A host name the Lua action can look up and the runtime API can carry as a key (`*.` wildcards too). */
export function usableHost(host: string): boolean {
  return /^(\*\.)?[a-z0-9_.-]+$/.test(host);
}

export interface LuaPlan {
  /** Host → what hosts.map sends it to: the app's backend, or LUA_TARGET. Hosts of apps without a backend are absent. */
  readonly hosts: ReadonlyMap<string, string>;
  /** rules.map entries (without the version key). */
  readonly rules: ReadonlyMap<string, string>;
  /**
   * wildcards.map: ".example.com" → LUA_TARGET for each `*.example.com`; the
   * frontend looks a Host up there (map_end) when hosts.map has no entry, and
   * the Lua action picks the longest wildcard, as nginx does.
   */
  readonly wildcards: ReadonlyMap<string, string>;
}

/**
 * `backends(app)`: version → pool backend of every placed version (the
 * default version's first). `policy(app)`: the app's policyRecord, or null.
 */
export function luaPlan(
  routes: ReadonlyMap<string, AppRoute>,
  backends: (app: string) => ReadonlyMap<string, string> | undefined,
  policy: (app: string) => string | null,
  regions: string | null = null,
): LuaPlan {
  const owners = new Map<string, { app: string; prefixes: readonly string[] }[]>();
  for (const [app, route] of routes) {
    for (const vhost of route.vhosts) {
      const host = vhost.toLowerCase();
      if (!usableHost(host)) continue;
      let list = owners.get(host);
      if (!list) owners.set(host, (list = []));
      list.push({ app, prefixes: route.paths?.[vhost] ?? ['/'] });
    }
  }
  const hosts = new Map<string, string>();
  const rules = new Map<string, string>();
  const wildcards = new Map<string, string>();
  const luaApps = new Set<string>();
  for (const [host, list] of owners) {
    const placed = list.filter((o) => backends(o.app)?.size);
    if (placed.length === 0) continue;
    const wildcard = host.startsWith('*.');
    const only = placed.length === 1 && list.length === 1 && !wildcard ? placed[0]! : null;
    if (only && !needsLua(routes.get(only.app)!)) {
      const route = routes.get(only.app)!;
      const backend = backends(only.app)!.get(route.defaultVersion);
      if (backend !== undefined) hosts.set(host, backend);
      continue;
    }
    if (wildcard) wildcards.set(host.slice(1), LUA_TARGET);
    else hosts.set(host, LUA_TARGET);
    const items: string[] = [];
    // By app; an app's own entries (vhosts that lowercase alike) keep their order.
    for (const o of [...placed].sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : 0))) {
      luaApps.add(o.app);
      for (const prefix of o.prefixes) items.push(`${encodePart(prefix)}:${encodePart(o.app)}`);
    }
    setRecord(rules, `h:${host}`, `p=${items.join(',')}`);
  }
  for (const app of [...luaApps].sort()) {
    const route = routes.get(app)!;
    setRecord(rules, `a:${encodePart(app)}`, appRecord(route, backends(app)!));
    const text = policy(app);
    if (text !== null && Object.keys(route.versions).length > 1) setRecord(rules, `p:${encodePart(app)}`, text);
  }
  if (regions !== null) setRecord(rules, 'x:regions', regions);
  return { hosts, rules, wildcards };
}

export function appRecord(route: AppRoute, backends: ReadonlyMap<string, string>): string {
  const fields = [`d=${encodePart(route.defaultVersion)}`, `v=${[...backends].map(([v, b]) => `${encodePart(v)}:${encodePart(b)}`).join(',')}`];
  const s = route.settings;
  if (s?.stripPath) fields.push('s=1');
  if (s?.redirectHttps) fields.push('r=1');
  if (s?.redirectRoot !== undefined) fields.push(`o=${encodePart(s.redirectRoot)}`);
  if (s?.hsts) fields.push('h=1');
  if (s?.maxBodySize !== undefined) fields.push(`m=${s.maxBodySize}`);
  const timeout = serverTimeoutMs(s);
  if (timeout !== null) fields.push(`t=${timeout}`);
  if (s?.allowFrom) fields.push(`f=${s.allowFrom.map(encodePart).join(',')}`);
  if (s?.sticky !== undefined) fields.push(`k=${encodePart(s.sticky)}`);
  // The hashes go to HAProxy (rules.map, as marathon-lb's userlists went into haproxy.cfg), nowhere else.
  if (s?.basicAuth) {
    fields.push(`b=${encodePart(s.basicAuth.realm)}`);
    fields.push(`u=${Object.entries(s.basicAuth.users).map(([user, hash]) => `${encodePart(user)}:${encodePart(hash)}`).join(',')}`);
  }
  return fields.join('|');
}

/** Version → backend as an a: record lists them (to read back what HAProxy holds). */
export function appRecordBackends(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of text.split('|')) {
    if (!field.startsWith('v=')) continue;
    for (const item of field.slice(2).split(',')) {
      const [version, backend] = item.split(':').map((p) => decodeURIComponent(p));
      if (version !== undefined && backend !== undefined) out.set(version, backend);
    }
  }
  return out;
}

type ValueTest = { values?: readonly string[]; pattern?: string; patterns?: readonly string[] };

function valueTest(kind: string, name: string, test: ValueTest): string {
  const [mode, items] = test.values ? ['v', test.values] : ['x', test.patterns ?? [test.pattern!]];
  return `${kind}=${[encodePart(name), mode, ...items.map(encodePart)].join(':')}`;
}

/** A checked policy as the Lua action reads it (lua/edgeroute/haproxy/policy.lua). */
export function policyRecord(policy: Policy): string {
  const fields = [`d=${encodePart(policy.default ?? 'stable')}`, `s=${encodePart(policy.seed ?? '')}`];
  for (const rule of policy.rules ?? []) {
    fields.push(`r=${encodePart(rule.version)}`);
    const m = rule.match as {
      device?: ValueTest & { header?: string };
      header?: ValueTest & { name: string };
      cookie?: ValueTest & { name: string };
      arg?: ValueTest & { name: string };
      ip?: readonly string[];
      region?: readonly string[];
      percentage?: { value: number; by: string };
    };
    if (m.device) fields.push(valueTest('h', m.device.header ?? 'User-Agent', m.device));
    if (m.header) fields.push(valueTest('h', m.header.name, m.header));
    if (m.cookie) fields.push(valueTest('c', m.cookie.name, m.cookie));
    if (m.arg) fields.push(valueTest('a', m.arg.name, m.arg));
    if (m.ip) fields.push(`i=${m.ip.map(encodePart).join(',')}`);
    if (m.region) fields.push(`g=${m.region.map(encodePart).join(',')}`);
    if (m.percentage) {
      const by = m.percentage.by;
      const [kind, name] = by === 'ip' ? ['i', ''] : by.startsWith('cookie:') ? ['c', by.slice(7)] : ['h', by.slice(7)];
      fields.push(`q=${bucketBound(m.percentage.value)}:${kind}:${encodePart(name)}`);
    }
  }
  return fields.join('|');
}

/** The CIDR→region table (field CIDR, value region) as the x:regions record, most specific CIDR first. */
export function regionsRecord(entries: readonly (readonly [string, string])[]): string {
  const bits = (cidr: string) => {
    const [address, prefix] = cidr.split('/');
    return prefix === undefined ? (address!.includes(':') ? 128 : 32) : Number(prefix);
  };
  const sorted = [...entries].sort((a, b) => bits(b[0]) - bits(a[0]) || (a[0] < b[0] ? -1 : 1));
  return `e=${sorted.map(([c, r]) => `${encodePart(c)}:${encodePart(r)}`).join(',')}`;
}

/** Sets a record, split over several entries when it is long. */
function setRecord(into: Map<string, string>, key: string, text: string): void {
  for (const [k, v] of recordEntries(key, text)) into.set(k, v);
}

export function recordEntries(key: string, text: string, max = MAX_ENTRY_VALUE): [string, string][] {
  if (text.length <= max && !text.startsWith('#')) return [[key, text]];
  const parts: [string, string][] = [];
  for (let at = 0, i = 1; at < text.length; at += max, i++) parts.push([`${key}#${i}`, text.slice(at, at + max)]);
  return [[key, `#${parts.length}`], ...parts];
}

/** Reassembles the records of `show map rules.map` entries (key → value). */
export function readRecords(entries: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of entries) {
    if (/#\d+$/.test(key)) continue;
    if (!value.startsWith('#')) {
      out.set(key, value);
      continue;
    }
    const n = Number(value.slice(1));
    const parts: string[] = [];
    for (let i = 1; i <= n; i++) {
      const part = entries.get(`${key}#${i}`);
      if (part === undefined) break;
      parts.push(part);
    }
    if (parts.length === n) out.set(key, parts.join(''));
  }
  return out;
}
