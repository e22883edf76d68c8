/**
 * What the plugin accepts in a push (lua/edgeroute/route_check.lua and
 * push_format.lua), restated for the in-process targets: a route the agent
 * computes from any Marathon input must pass it, or nginx refuses the whole
 * push and every app stops following Marathon.
 */
import { isWellFormedText } from '../../agent/core/json-guards.js';
import type { AppRoute } from '../../agent/core/routing-table.js';

/** route_check.lua's MAX_ID_BYTES: the shared dict refuses keys over 64 KiB. */
export const PLUGIN_MAX_ID_BYTES = 4096;
const MAX_WEIGHT = 10_000;

const isWhole = (n: unknown, min: number, max: number): boolean => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;

/** route_check.lua's is_ip: loose on purpose (nginx checks the peer when it connects), but never a host name. */
function isPluginIp(address: unknown): boolean {
  if (typeof address !== 'string') return false;
  return /^\d+\.\d+\.\d+\.\d+$/.test(address) || (/^[0-9a-fA-F:.]+$/.test(address) && address.includes(':'));
}

/** Null when the plugin accepts `route`, else why not. */
export function pluginRouteProblem(route: AppRoute): string | null {
  const where = `apps[${route.id}]`;
  // JSON.stringify writes a lone surrogate as "\ud800", which cjson refuses.
  let loneSurrogate = false;
  JSON.stringify(route, (key: string, value: unknown) => {
    if (!isWellFormedText(key) || (typeof value === 'string' && !isWellFormedText(value))) loneSurrogate = true;
    return value;
  });
  if (loneSurrogate) return `${where}: a lone surrogate, which the plugin's JSON decoder refuses`;
  if (typeof route.id !== 'string' || route.id === '') return `${where}: an app route needs an id`;
  if (Buffer.byteLength(route.id) > PLUGIN_MAX_ID_BYTES) return `${where}: id longer than ${PLUGIN_MAX_ID_BYTES} bytes`;
  if (typeof route.hash !== 'string' || route.hash === '') return `${where}.hash must be a non-empty string`;
  if (!Array.isArray(route.vhosts) || route.vhosts.length === 0) return `${where}.vhosts must be a non-empty array`;
  if (route.vhosts.some((vhost) => typeof vhost !== 'string' || vhost === '')) return `${where}.vhosts has a bad host name`;
  for (const [name, version] of Object.entries(route.versions)) {
    for (const [i, backend] of version.backends.entries()) {
      const at = `${where}.versions[${name}].backends[${i + 1}]`;
      if (typeof backend.id !== 'string' || backend.id === '') return `${at}.id must be a non-empty string`;
      if (!isPluginIp(backend.address)) return `${at}.address must be an IP address, got ${backend.address}`;
      if (!isWhole(backend.port, 1, 65_535)) return `${at}.port must be a port number, got ${backend.port}`;
      if (!isWhole(backend.weight, 1, MAX_WEIGHT)) return `${at}.weight must be a whole number from 1 to ${MAX_WEIGHT}, got ${backend.weight}`;
    }
  }
  if (typeof route.defaultVersion !== 'string' || route.versions[route.defaultVersion] === undefined) return `${where}.defaultVersion must name one of its versions`;
  return pluginPathsProblem(route.vhosts, (route as { paths?: unknown }).paths, where) ?? pluginSettingsProblem((route as { settings?: unknown }).settings, where);
}

/** Lua's #t for what cjson decodes: a JSON array's length; an object (string keys only) has none. */
const luaLength = (value: object): number => (Array.isArray(value) ? value.length : 0);
/** Lua's pairs() keys of a decoded JSON container: an array's are numbers, which no string check passes. */
const luaEntries = (value: object): Array<[string | number, unknown]> => (Array.isArray(value) ? value.map((item, i) => [i + 1, item] as [number, unknown]) : Object.entries(value));
const isTable = (value: unknown): value is object => typeof value === 'object' && value !== null;
/** Lua's %s in the C locale. */
const LUA_SPACE = '\t\n\v\f\r ';
const PREFIX = new RegExp(`^/[^${LUA_SPACE}%?#]*[^/${LUA_SPACE}%?#]$`);

/** route_check.lua's is_prefix: "/" or "/a/b" (no trailing "/", no "//", no spaces, %, ? or #), at most 1,024 bytes. */
export function isPluginPrefix(path: unknown): boolean {
  return typeof path === 'string' && Buffer.byteLength(path) <= 1024 && (path === '/' || (PREFIX.test(path) && !path.includes('//')));
}

/** route_check.lua's check_paths: null when `paths` (absent, or host → non-empty array of prefixes, hosts among vhosts) passes. */
export function pluginPathsProblem(vhosts: readonly unknown[], paths: unknown, where: string): string | null {
  if (paths === undefined) return null;
  if (!isTable(paths)) return `${where}.paths must be an object of host → prefixes`;
  for (const [host, prefixes] of luaEntries(paths)) {
    if (!vhosts.includes(host)) return `${where}.paths[${String(host)}] names a host not in vhosts`;
    if (!isTable(prefixes) || luaLength(prefixes) === 0) return `${where}.paths[${String(host)}] must be a non-empty array`;
    const bad = (prefixes as unknown[]).findIndex((prefix) => !isPluginPrefix(prefix));
    if (bad >= 0) return `${where}.paths[${String(host)}][${bad + 1}] is not a path prefix`;
  }
  return null;
}

const isTimeout = (v: unknown) => typeof v === 'number' && v > 0 && v <= 86_400;
const SETTING_CHECKS: Readonly<Record<string, (value: unknown) => boolean>> = {
  stripPath: (v) => v === true,
  redirectHttps: (v) => v === true,
  sticky: (v) => typeof v === 'string' && /^[A-Za-z0-9_.-]+$/.test(v) && v.length <= 64,
  balance: (v) => v === 'leastconn',
  connectTimeout: isTimeout,
  readTimeout: isTimeout,
  sendTimeout: isTimeout,
  maxBodySize: (v) => isWhole(v, 1, 2 ** 53),
  allowFrom: (v) => isTable(v) && luaLength(v) > 0 && (v as unknown[]).every((text) => isPluginCidr(text)),
};

/** route_check.lua's check_settings: null when `settings` (absent, or an object of known, valid settings) passes. */
export function pluginSettingsProblem(settings: unknown, where: string): string | null {
  if (settings === undefined) return null;
  if (!isTable(settings)) return `${where}.settings must be an object`;
  for (const [name, value] of luaEntries(settings)) {
    const valid = typeof name === 'string' && Object.hasOwn(SETTING_CHECKS, name) ? SETTING_CHECKS[name]! : undefined;
    if (valid === undefined) return `${where}.settings has an unknown setting ${String(name)}`;
    if (!valid(value)) return `${where}.settings.${name} is not valid: ${JSON.stringify(value)?.slice(0, 80)}`;
  }
  return null;
}

/** lua/edgeroute/policy/cidr.lua's parse_ipv4: four 1–3 digit parts up to 255, no leading zeros. */
function luaIpv4(text: string): boolean {
  const parts = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(text);
  return parts !== null && parts.slice(1).every((part) => !(part.length > 1 && part.startsWith('0')) && Number(part) <= 255);
}

/** cidr.lua's parse_groups: "" or 1–4 hex digits separated by ":"; the count, or null. */
function luaGroups(text: string): number | null {
  if (text === '') return 0;
  const groups = text.split(':');
  return groups.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group)) ? groups.length : null;
}

/** cidr.lua's parse_ipv6, restated step by step (a dotted tail after the last ":" stands for two groups). */
function luaIpv6(address: string): boolean {
  let text = address;
  if (!text.includes(':')) return false;
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    if (!luaIpv4(text.slice(lastColon + 1))) return false;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const gap = text.indexOf('::');
  if (gap >= 0) {
    const head = text.slice(0, gap);
    const rest = text.slice(gap + 2);
    if (rest.includes('::')) return false;
    const before = luaGroups(head);
    const after = luaGroups(rest);
    return before !== null && after !== null && before + after <= 7;
  }
  return luaGroups(text) === 8;
}

/** cidr.lua's parse: at most 64 bytes, an address, then optionally "/" and 1–3 digits up to the address's size. */
export function isPluginCidr(text: unknown): boolean {
  if (typeof text !== 'string' || Buffer.byteLength(text) > 64) return false;
  const split = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  const address = split ? split[1]! : text;
  const bits = luaIpv4(address) ? 32 : luaIpv6(address) ? 128 : 0;
  if (bits === 0) return false;
  return split === null || Number(split[2]) <= bits;
}
