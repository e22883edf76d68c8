/**
 * Reads the per-route labels of one app (paths and proxy settings). Every
 * setting is applied by the plugin per request, so none needs a reload.
 */
import { isCidr } from '../policy/cidr.js';
import { parseBasicAuth, shownBasicAuth, type BasicAuth, type BasicAuthShown } from './basic-auth.js';

export const ROUTE_LABEL = {
  path: 'edgeroute.path',
  stripPath: 'edgeroute.stripPath',
  redirectHttps: 'edgeroute.redirectHttps',
  redirectRoot: 'edgeroute.redirectRoot',
  hsts: 'edgeroute.hsts',
  sticky: 'edgeroute.sticky',
  balance: 'edgeroute.balance',
  connectTimeout: 'edgeroute.connectTimeout',
  readTimeout: 'edgeroute.readTimeout',
  sendTimeout: 'edgeroute.sendTimeout',
  maxBodySize: 'edgeroute.maxBodySize',
  allowFrom: 'edgeroute.allowFrom',
  basicAuth: 'edgeroute.basicAuth',
} as const;

export const ROOT_PATH = '/';
export const DEFAULT_STICKY_COOKIE = 'edgeroute_sticky';

/**
 * What the plugin applies besides Host/path routing. A field is present only
 * when it differs from the default, so an app without these labels pushes
 * (and hashes) exactly as before they existed.
 */
export interface RouteSettings {
  readonly stripPath?: true;
  readonly redirectHttps?: true;
  /** Where a request for exactly "/" is redirected (301), as marathon-lb's HTTP_BACKEND_REDIR. */
  readonly redirectRoot?: string;
  /** `Strict-Transport-Security: max-age=15768000` on the app's responses (marathon-lb's USE_HSTS). */
  readonly hsts?: true;
  /** Cookie name of session affinity. */
  readonly sticky?: string;
  readonly balance?: 'leastconn';
  /** Seconds. */
  readonly connectTimeout?: number;
  readonly readTimeout?: number;
  readonly sendTimeout?: number;
  /** Bytes. */
  readonly maxBodySize?: number;
  readonly allowFrom?: readonly string[];
  /** HTTP Basic credentials, checked as crypt(3) does (marathon-lb's HAPROXY_n_AUTH); show it with shownSettings. */
  readonly basicAuth?: BasicAuth;
}

/** RouteSettings as the agent shows them (/v1/state, the dashboard): basicAuth without its hashes. */
export type ShownSettings = Omit<RouteSettings, 'basicAuth'> & { readonly basicAuth?: BasicAuthShown };

export function shownSettings(settings: RouteSettings | undefined): ShownSettings {
  if (!settings) return {};
  const { basicAuth, ...rest } = settings;
  return basicAuth ? { ...rest, basicAuth: shownBasicAuth(basicAuth) } : rest;
}

export interface RouteLabels {
  /** Sorted, without duplicates; ['/'] when the label is absent. */
  readonly paths: readonly string[];
  /** null when every setting is the default. */
  readonly settings: RouteSettings | null;
}

const MAX_PATHS = 32;
const MAX_PATH_LENGTH = 256;
const MAX_TIMEOUT_SECONDS = 86_400;
const MAX_ALLOW_ENTRIES = 256;
/** 1 TiB: larger is no limit in practice, and the plugin keeps sizes as doubles. */
const MAX_BODY_BYTES = 1024 ** 4;
/** Characters RFC 3986 allows in a path, less "%" (prefixes match the decoded URI) and "," (the list separator). */
const PATH = /^\/[A-Za-z0-9._~!$&'()*+;=:@\/-]*$/;
/** A path (query allowed) or an http(s) URL: characters RFC 3986 allows, so nothing can break the Location header. */
const REDIRECT_TARGET = /^(?:\/|https?:\/\/[A-Za-z0-9.-])[A-Za-z0-9._~!$&'()*+,;=:@\/?%#[\]-]*$/;
const MAX_REDIRECT_LENGTH = 1024;
/** marathon-lb's BACKEND_HSTS_OPTIONS. */
export const HSTS_VALUE = 'max-age=15768000';
const COOKIE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const SIZE = /^(\d{1,12})([kKmMgG]?)$/;
const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export type RouteLabelsResult = { ok: true; value: RouteLabels } | { ok: false; message: string };

export function readRouteLabels(labels: Readonly<Record<string, string>>): RouteLabelsResult {
  const paths = parsePaths(labels[ROUTE_LABEL.path]);
  if (typeof paths === 'string') return { ok: false, message: paths };

  const settings: { -readonly [K in keyof RouteSettings]: RouteSettings[K] } = {};
  for (const key of ['stripPath', 'redirectHttps', 'hsts'] as const) {
    const raw = labels[ROUTE_LABEL[key]];
    if (raw === undefined) continue;
    const flag = parseBoolean(raw);
    if (flag === null) return { ok: false, message: `${ROUTE_LABEL[key]}=${JSON.stringify(raw)} is not true or false` };
    if (flag) settings[key] = true;
  }

  const root = labels[ROUTE_LABEL.redirectRoot];
  if (root !== undefined) {
    const target = root.trim();
    if (target.length > MAX_REDIRECT_LENGTH || !REDIRECT_TARGET.test(target)) {
      return { ok: false, message: `${ROUTE_LABEL.redirectRoot}=${JSON.stringify(root)} is not a path starting with / or an http(s) URL (no spaces, quotes or < > \\ ^ \` { | }; at most ${MAX_REDIRECT_LENGTH} characters)` };
    }
    if (target === ROOT_PATH) return { ok: false, message: `${ROUTE_LABEL.redirectRoot}="/" would redirect / to itself` };
    settings.redirectRoot = target;
  }

  const sticky = labels[ROUTE_LABEL.sticky];
  if (sticky !== undefined) {
    const flag = parseBoolean(sticky);
    const name = sticky.trim();
    if (flag === true) settings.sticky = DEFAULT_STICKY_COOKIE;
    else if (flag === null) {
      if (!COOKIE_NAME.test(name)) return { ok: false, message: `${ROUTE_LABEL.sticky}=${JSON.stringify(sticky)} is neither true, false nor a cookie name (letters, digits, _ . -)` };
      settings.sticky = name;
    }
  }

  const balance = labels[ROUTE_LABEL.balance];
  if (balance !== undefined) {
    const value = balance.trim().toLowerCase();
    if (value === 'leastconn') settings.balance = 'leastconn';
    else if (value !== 'roundrobin') return { ok: false, message: `${ROUTE_LABEL.balance}=${JSON.stringify(balance)} is not roundrobin or leastconn` };
  }

  for (const key of ['connectTimeout', 'readTimeout', 'sendTimeout'] as const) {
    const raw = labels[ROUTE_LABEL[key]];
    if (raw === undefined) continue;
    const text = raw.trim();
    const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
    // nginx keeps timeouts in whole milliseconds.
    if (!(seconds >= 0.001 && seconds <= MAX_TIMEOUT_SECONDS)) {
      return { ok: false, message: `${ROUTE_LABEL[key]}=${JSON.stringify(raw)} is not a number of seconds from 0.001 to ${MAX_TIMEOUT_SECONDS}` };
    }
    settings[key] = Math.round(seconds * 1000) / 1000;
  }

  const size = labels[ROUTE_LABEL.maxBodySize];
  if (size !== undefined) {
    const bytes = parseSize(size);
    if (bytes === null || bytes > MAX_BODY_BYTES) return { ok: false, message: `${ROUTE_LABEL.maxBodySize}=${JSON.stringify(size)} is not a size like 512k, 10m or 1g, up to 1024g` };
    if (bytes > 0) settings.maxBodySize = bytes;
  }

  const allow = labels[ROUTE_LABEL.allowFrom];
  if (allow !== undefined) {
    const cidrs = [...new Set(allow.split(',').map((c) => c.trim()).filter((c) => c !== ''))];
    if (cidrs.length === 0 || cidrs.length > MAX_ALLOW_ENTRIES) return { ok: false, message: `${ROUTE_LABEL.allowFrom} needs 1 to ${MAX_ALLOW_ENTRIES} CIDRs` };
    const bad = cidrs.find((c) => !isCidr(c));
    if (bad !== undefined) return { ok: false, message: `${ROUTE_LABEL.allowFrom} has ${JSON.stringify(bad)}, which is not an IPv4 or IPv6 CIDR` };
    settings.allowFrom = cidrs;
  }

  const auth = labels[ROUTE_LABEL.basicAuth];
  if (auth !== undefined) {
    const parsed = parseBasicAuth(auth);
    // The message never quotes the label's value: it holds password hashes.
    if (typeof parsed === 'string') return { ok: false, message: `${ROUTE_LABEL.basicAuth} ${parsed}` };
    settings.basicAuth = parsed;
  }

  return { ok: true, value: { paths, settings: Object.keys(settings).length === 0 ? null : settings } };
}

/** Prefixes as the plugin compares them: with a leading "/", no trailing one (but "/" itself), no dot segments. */
function parsePaths(raw: string | undefined): string[] | string {
  if (raw === undefined) return [ROOT_PATH];
  const entries = raw.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (entries.length === 0) return `${ROUTE_LABEL.path} is empty`;
  if (entries.length > MAX_PATHS) return `${ROUTE_LABEL.path} has more than ${MAX_PATHS} prefixes`;
  const paths = new Set<string>();
  for (const entry of entries) {
    if (entry.length > MAX_PATH_LENGTH || !PATH.test(entry)) {
      return `${ROUTE_LABEL.path} has ${JSON.stringify(entry)}, which is not a path prefix starting with / (no %, ?, # or spaces)`;
    }
    // nginx routes on the normalized URI, where these can never occur.
    if (entry.includes('//') || /\/\.\.?(\/|$)/.test(entry)) return `${ROUTE_LABEL.path} has ${JSON.stringify(entry)}, which has an empty, "." or ".." segment`;
    paths.add(entry.length > 1 ? entry.replace(/\/$/, '') : entry);
  }
  return [...paths].sort();
}

/** `true` or `false`, any case; null: neither. */
export function parseBoolean(raw: string): boolean | null {
  const value = raw.trim().toLowerCase();
  return value === 'true' ? true : value === 'false' ? false : null;
}

function parseSize(raw: string): number | null {
  const match = SIZE.exec(raw.trim());
  if (!match) return null;
  return Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? 1);
}

export function sameSettings(a: RouteSettings | null | undefined, b: RouteSettings | null | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
