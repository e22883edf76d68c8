/**
 * The per-route labels of issue 13 (edgeroute.path, stripPath, redirectHttps,
 * sticky, balance, the timeouts, maxBodySize, allowFrom): valid values at
 * random for the fixtures, near-valid ones for the mutators, and what the
 * agent must make of them, restated here from the label contract
 * (../shared/DESIGN.md "Per-route settings"; the limits the contract leaves
 * open, such as 32 prefixes or 12 digits of size, are the agent's documented
 * ones) rather than by calling agent/core/route-settings.ts.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Rng } from './prng.js';

export const ROUTE_LABELS = [
  'edgeroute.path',
  'edgeroute.stripPath',
  'edgeroute.redirectHttps',
  'edgeroute.sticky',
  'edgeroute.balance',
  'edgeroute.connectTimeout',
  'edgeroute.readTimeout',
  'edgeroute.sendTimeout',
  'edgeroute.maxBodySize',
  'edgeroute.allowFrom',
] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

const VALID: Readonly<Record<RouteLabel, readonly string[]>> = {
  'edgeroute.path': ['/', '/api', '/api/', '/api,/auth', ' /v1 , /v2/x ', '/a.b', '/~user', "/s;p=1,/x:y@z!$&'()*+=", '/a/b/c/d', '/api,/api/', `/${'p'.repeat(255)}`, '/.well-known', '/a..b', '/...'],
  'edgeroute.stripPath': ['true', 'false', 'TRUE', ' True '],
  'edgeroute.redirectHttps': ['true', 'false', 'False'],
  'edgeroute.sticky': ['true', 'false', 'SESSION', 'my_cookie.v-1', ' sid ', 'c'.repeat(64)],
  'edgeroute.balance': ['roundrobin', 'leastconn', 'LeastConn', ' leastconn '],
  'edgeroute.connectTimeout': ['1', '0.5', '0.001', '86400', '30', ' 2.25 ', '0.0015'],
  'edgeroute.readTimeout': ['60', '0.25', '86400.0', '120'],
  'edgeroute.sendTimeout': ['60', '5.5', '1'],
  // Up to 1024g (the agent's limit; the plugin takes up to 2^53 bytes).
  'edgeroute.maxBodySize': ['10m', '512k', '1g', '0', '1', '1024', '10M', '999999999999', '1024g', '1073741824m'],
  'edgeroute.allowFrom': ['127.0.0.0/8', '10.0.0.0/8,192.168.0.0/16', '::1/128,127.0.0.1', '2001:db8::/32', '0.0.0.0/0, ::/0', '::ffff:10.0.0.1/128', '1.2.3.4/32,1.2.3.4/32', '::1.2.3.4'],
};

/** Values one edit away from valid, or nowhere near it: each label's own edge cases. */
const NEAR: Readonly<Record<RouteLabel, readonly string[]>> = {
  'edgeroute.path': ['', ',', ' , ', 'api', '/api/../x', '/api/./x', '/..', '/.', '//', '/a//b', '/a b', '/a%2fb', '/a?b', '/a#b', '/é', '/a\tb', `/${'p'.repeat(256)}`, Array.from({ length: 33 }, (_, i) => `/p${i}`).join(','), Array.from({ length: 32 }, (_, i) => `/p${i}`).join(','), '/a,b', '/a\\b', '/a"b', '/a<b>', '/a|b', '/a^b', '/`'],
  'edgeroute.stripPath': ['yes', '1', 'on', '', 'tru', 'true!', 'truee'],
  'edgeroute.redirectHttps': ['yes', '0', '', 'https', 'ture'],
  'edgeroute.sticky': ['', 'a b', 'c'.repeat(65), 'sid;x', 'é', 'a=b', 'true,false', '-', '.'],
  'edgeroute.balance': ['', 'random', 'least_conn', 'round-robin', 'leastconn,roundrobin', 'ip_hash'],
  'edgeroute.connectTimeout': ['', '0', '0.0', '0.0009', '86400.001', '86401', '1e3', '-1', '1s', '.5', '5.', 'NaN', 'Infinity', '0x10', '１'],
  'edgeroute.readTimeout': ['0', '100000', 'abc', '1,5'],
  'edgeroute.sendTimeout': ['0', ' ', '-0', '+1'],
  'edgeroute.maxBodySize': ['', '10mb', '1.5m', '-1', '1t', 'm', '9999999999999', '10 m', '0x10', '1025g', '1073741825m', '8388608g', '8388609g', '99999999g'],
  'edgeroute.allowFrom': ['', ',', 'any', '10.0.0.0/33', '::/129', '10.0.0.1/8/8', '010.0.0.1', '10.0.0.1/032', 'fe80::1%eth0', '1::2::3', '256.0.0.1', '10.0.0', '::ffff:1.2.3.04', '1:2:3:4:5:6:7:8:9', 'localhost', '10.0.0.0/ 8', Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(',')],
};

/** A few valid per-route labels (none, some, or all). */
export function randomRouteLabels(rng: Rng): Record<string, string> {
  const labels: Record<string, string> = {};
  const count = rng.weighted<number>([[3, 1], [2, 2], [1, 4], [1, ROUTE_LABELS.length]]);
  for (let i = 0; i < count; i++) {
    const name = rng.pick(ROUTE_LABELS);
    labels[name] = rng.pick(VALID[name]);
  }
  return labels;
}

/** A string value for one route label: near-valid, valid, or a valid one with a character changed. */
export function routeLabelMutant(rng: Rng, name: RouteLabel): string {
  return rng.weighted<() => string>([
    [4, () => rng.pick(NEAR[name])],
    [1, () => rng.pick(VALID[name])],
    [
      2,
      () => {
        const base = rng.pick(VALID[name]);
        const at = rng.int(base.length + 1);
        const inserted = rng.stringOf("/.,%;?#: \t-_0123456789abcxyzKMG%2e%2f\u00e9\u0000\u2028\ufeff", rng.between(1, 3));
        return rng.chance(0.5) ? base.slice(0, at) + inserted + base.slice(at) : base.slice(0, at) + base.slice(at + 1);
      },
    ],
  ])();
}

/** What the plugin is to be sent for an app's per-route labels. */
export interface PredictedRoute {
  readonly paths: readonly string[];
  readonly settings: Readonly<Record<string, unknown>> | null;
}

export type RoutePrediction = { ok: true; value: PredictedRoute } | { ok: false; bad: readonly RouteLabel[] };

const PATH_CHARS = /^\/[A-Za-z0-9._~!$&'()*+;=:@/-]*$/;

function flag(raw: string): boolean | null {
  const value = raw.trim().toLowerCase();
  return value === 'true' ? true : value === 'false' ? false : null;
}

/** A CIDR as the contract means it: an IPv4 or IPv6 address (no zone), with an optional prefix length within its size. */
function isCidrText(text: string): boolean {
  const parts = text.split('/');
  if (parts.length > 2 || parts[0]!.includes('%')) return false;
  const bits = isIPv4(parts[0]!) ? 32 : isIPv6(parts[0]!) ? 128 : 0;
  if (bits === 0) return false;
  return parts.length === 1 || (/^\d{1,3}$/.test(parts[1]!) && Number(parts[1]) <= bits);
}

/**
 * Every route label of `labels` that is bad (the app must be skipped with a
 * problem naming one of them), or the paths and settings its route carries.
 */
export function predictRouteLabels(labels: Readonly<Record<string, string>>): RoutePrediction {
  const bad: RouteLabel[] = [];
  const settings: Record<string, unknown> = {};

  let paths: string[] = ['/'];
  const rawPath = labels['edgeroute.path'];
  if (rawPath !== undefined) {
    const entries = rawPath.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const good = entries.length > 0 && entries.length <= 32 && entries.every((p) => p.length <= 256 && PATH_CHARS.test(p) && !p.includes('//') && !p.split('/').some((s) => s === '.' || s === '..'));
    if (good) paths = [...new Set(entries.map((p) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p)))].sort();
    else bad.push('edgeroute.path');
  }
  for (const name of ['stripPath', 'redirectHttps'] as const) {
    const raw = labels[`edgeroute.${name}`];
    if (raw === undefined) continue;
    const value = flag(raw);
    if (value === null) bad.push(`edgeroute.${name}`);
    else if (value) settings[name] = true;
  }
  const sticky = labels['edgeroute.sticky'];
  if (sticky !== undefined) {
    const value = flag(sticky);
    if (value === true) settings.sticky = 'edgeroute_sticky';
    else if (value === null) {
      if (/^[A-Za-z0-9_.-]{1,64}$/.test(sticky.trim())) settings.sticky = sticky.trim();
      else bad.push('edgeroute.sticky');
    }
  }
  const balance = labels['edgeroute.balance'];
  if (balance !== undefined) {
    const value = balance.trim().toLowerCase();
    if (value === 'leastconn') settings.balance = 'leastconn';
    else if (value !== 'roundrobin') bad.push('edgeroute.balance');
  }
  for (const name of ['connectTimeout', 'readTimeout', 'sendTimeout'] as const) {
    const raw = labels[`edgeroute.${name}`];
    if (raw === undefined) continue;
    const text = raw.trim();
    const seconds = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
    if (seconds >= 0.001 && seconds <= 86_400) settings[name] = Math.round(seconds * 1000) / 1000;
    else bad.push(`edgeroute.${name}`);
  }
  const size = labels['edgeroute.maxBodySize'];
  if (size !== undefined) {
    const match = /^([0-9]{1,12})([kmgKMG]?)$/.exec(size.trim());
    if (match === null) bad.push('edgeroute.maxBodySize');
    else {
      const bytes = Number(match[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[match[2]!.toLowerCase()]!;
      if (bytes > 1024 ** 4) bad.push('edgeroute.maxBodySize');
      else if (bytes > 0) settings.maxBodySize = bytes;
    }
  }
  const allow = labels['edgeroute.allowFrom'];
  if (allow !== undefined) {
    const cidrs = [...new Set(allow.split(',').map((c) => c.trim()).filter((c) => c !== ''))];
    if (cidrs.length === 0 || cidrs.length > 256 || !cidrs.every(isCidrText)) bad.push('edgeroute.allowFrom');
    else settings.allowFrom = cidrs;
  }
  if (bad.length > 0) return { ok: false, bad };
  return { ok: true, value: { paths, settings: Object.keys(settings).length === 0 ? null : settings } };
}

/** The route labels of `labels`, the others left out. */
export function withoutRouteLabels(labels: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !(ROUTE_LABELS as readonly string[]).includes(name)));
}
