/** Reads the `edgeroute.*` Marathon labels of one app. */
import { parseBoolean, readRouteLabels, type RouteSettings } from './route-settings.js';
import { parseGroupList } from './groups.js';
import { parseTcpBind } from './tcp-bind.js';

export const LABEL = {
  vhosts: 'edgeroute.vhosts',
  portIndex: 'edgeroute.portIndex',
  group: 'edgeroute.group',
  app: 'edgeroute.app',
  version: 'edgeroute.version',
  weight: 'edgeroute.weight',
  publishDelaySeconds: 'edgeroute.publishDelaySeconds',
  warmupSeconds: 'edgeroute.warmupSeconds',
  tcpPort: 'edgeroute.tcpPort',
  tcpBind: 'edgeroute.tcpBind',
  acme: 'edgeroute.acme',
} as const;

/** `edgeroute.tcpPort=service`: the app's Marathon service port at edgeroute.portIndex. */
export const SERVICE_PORT = 'service';

export const DEFAULT_VERSION = 'stable';
export const DEFAULT_WEIGHT = 100;
const MAX_WEIGHT = 10_000;
const MAX_SECONDS = 86_400;

export interface RoutingLabels {
  /** Empty for a TCP-only app (edgeroute.tcpPort without edgeroute.vhosts). */
  readonly vhosts: readonly string[];
  /** edgeroute.tcpPort: a port, or 'service' (resolved against the app definition); absent when not set. */
  readonly tcpPort?: number | typeof SERVICE_PORT;
  /** edgeroute.tcpBind: the one address HAProxy nodes listen on for tcpPort (canonical); absent: their TCP listen hosts. */
  readonly tcpBind?: string;
  readonly portIndex: number;
  /** edgeroute.group, a comma list: the routing groups the app belongs to; empty: none. */
  readonly groups: readonly string[];
  /** Logical app; null means "the Marathon app id". */
  readonly app: string | null;
  readonly version: string;
  readonly weight: number;
  /** null: the agent's default. */
  readonly publishDelaySeconds: number | null;
  readonly warmupSeconds: number | null;
  /** Path prefixes served on every vhost; ['/'] by default. */
  readonly paths: readonly string[];
  /** Per-route proxy settings; null: all defaults. */
  readonly settings: RouteSettings | null;
  /** edgeroute.acme=true: the vhosts get certificates from the agent's ACME directory; absent: not set or false. */
  readonly acme?: true;
}

export type LabelsResult =
  | { ok: true; routed: true; value: RoutingLabels }
  | { ok: true; routed: false }
  | { ok: false; message: string };

const HOST_LABEL = '[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?';
const VHOST = new RegExp(`^(\\*\\.)?${HOST_LABEL}(\\.${HOST_LABEL})*$`);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,127}$/;

export function readRoutingLabels(labels: Readonly<Record<string, string>>): LabelsResult {
  const rawVhosts = labels[LABEL.vhosts];
  const rawTcpPort = labels[LABEL.tcpPort];
  if (rawVhosts === undefined && rawTcpPort === undefined) return { ok: true, routed: false };

  const vhosts = rawVhosts === undefined ? [] : parseVhosts(rawVhosts);
  if (typeof vhosts === 'string') return { ok: false, message: vhosts };

  const tcpPort = rawTcpPort === undefined ? null : parseTcpPort(rawTcpPort);
  if (tcpPort === undefined) return { ok: false, message: `${LABEL.tcpPort}=${JSON.stringify(rawTcpPort)} is not a port (1 to 65535) or "${SERVICE_PORT}"` };

  const rawTcpBind = labels[LABEL.tcpBind];
  const tcpBind = rawTcpBind === undefined ? null : parseTcpBind(rawTcpBind);
  if (tcpBind !== null && !tcpBind.ok) return { ok: false, message: `${LABEL.tcpBind}=${JSON.stringify(rawTcpBind)} ${tcpBind.why}` };
  if (tcpBind?.address && tcpPort === null) return { ok: false, message: `${LABEL.tcpBind}=${JSON.stringify(rawTcpBind)} needs ${LABEL.tcpPort}: it is the address of the app's TCP port` };

  const portIndex = parseInteger(labels[LABEL.portIndex], 0, 0, 1000);
  if (portIndex === null) return { ok: false, message: `${LABEL.portIndex}=${JSON.stringify(labels[LABEL.portIndex])} is not a port index (0, 1, ...)` };

  const weight = parseInteger(labels[LABEL.weight], DEFAULT_WEIGHT, 1, MAX_WEIGHT);
  if (weight === null) return { ok: false, message: `${LABEL.weight}=${JSON.stringify(labels[LABEL.weight])} is not a whole number from 1 to ${MAX_WEIGHT}` };

  const durations: Record<'publishDelaySeconds' | 'warmupSeconds', number | null> = { publishDelaySeconds: null, warmupSeconds: null };
  for (const key of ['publishDelaySeconds', 'warmupSeconds'] as const) {
    const raw = labels[LABEL[key]];
    if (raw === undefined) continue;
    const seconds = parseSeconds(raw);
    if (seconds === null) return { ok: false, message: `${LABEL[key]}=${JSON.stringify(raw)} is not a number of seconds from 0 to ${MAX_SECONDS}` };
    durations[key] = seconds;
  }

  const rawGroups = labels[LABEL.group];
  const groups = rawGroups === undefined ? [] : parseGroupList(rawGroups);
  const badGroup = rawGroups === undefined ? undefined : groups.length === 0 ? rawGroups : groups.find((g) => !NAME.test(g));
  if (badGroup !== undefined) return { ok: false, message: `${LABEL.group}=${JSON.stringify(rawGroups)} has ${JSON.stringify(badGroup)}, which is not a valid group name` };

  const names: Record<'app' | 'version', string | null> = { app: null, version: null };
  for (const key of ['app', 'version'] as const) {
    const value = labels[LABEL[key]];
    if (value === undefined) continue;
    if (!NAME.test(value.trim())) return { ok: false, message: `${LABEL[key]}=${JSON.stringify(value)} is not a valid name` };
    names[key] = value.trim();
  }

  const route = readRouteLabels(labels);
  if (!route.ok) return route;

  const rawAcme = labels[LABEL.acme];
  const acme = rawAcme === undefined ? false : parseBoolean(rawAcme);
  if (acme === null) return { ok: false, message: `${LABEL.acme}=${JSON.stringify(rawAcme)} is not true or false` };

  return {
    ok: true,
    routed: true,
    value: { vhosts, ...(tcpPort === null ? {} : { tcpPort }), ...(tcpBind?.address ? { tcpBind: tcpBind.address } : {}), portIndex, weight, groups, app: names.app, version: names.version ?? DEFAULT_VERSION, ...durations, ...route.value, ...(acme ? { acme: true as const } : {}) },
  };
}

/** Returns the normalised host list, or a message naming the bad entry. */
function parseVhosts(raw: string): string[] | string {
  const hosts = raw
    .split(',')
    .map((h) => h.trim().toLowerCase().replace(/\.$/, ''))
    .filter((h) => h !== '');
  if (hosts.length === 0) return `${LABEL.vhosts} is empty`;
  for (const host of hosts) {
    if (host.length > 253 || !VHOST.test(host)) return `${LABEL.vhosts} has an invalid host name ${JSON.stringify(host)}`;
  }
  return [...new Set(hosts)].sort();
}

/** A port, 'service', or undefined when it is neither. */
function parseTcpPort(raw: string): number | typeof SERVICE_PORT | undefined {
  const text = raw.trim();
  if (text.toLowerCase() === SERVICE_PORT) return SERVICE_PORT;
  const port = parseInteger(text, 0, 1, 65_535);
  return port === null ? undefined : port;
}

function parseInteger(raw: string | undefined, fallback: number, min: number, max: number): number | null {
  if (raw === undefined) return fallback;
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return null;
  const value = Number(text);
  return value >= min && value <= max ? value : null;
}

function parseSeconds(raw: string): number | null {
  const text = raw.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  const value = Number(text);
  return value <= MAX_SECONDS ? value : null;
}
