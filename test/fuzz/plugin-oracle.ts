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
  return null;
}
