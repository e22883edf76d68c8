/**
 * Path routing (issue 13) as the requests target predicts it: one host
 * shared by several apps with path prefixes, nginx's normalized URI computed
 * here from the raw request target (decode %XX, merge slashes, resolve "."
 * and ".."), the app that must serve it (the longest prefix that matches at
 * a "/" boundary) and the path its backend must receive.
 *
 * Paths are byte strings (latin1), as nginx sees them.
 */

export const PATHS_HOST = 'paths.fuzz';

export interface PathApp {
  readonly id: string;
  /** Prefixes as the agent pushes them: "/" or without a trailing "/". */
  readonly prefixes: readonly string[];
  readonly stripPath: boolean;
  /** Its labels in Marathon (the agent-fed node gets the same table from them). */
  readonly labels: Readonly<Record<string, string>>;
}

const app = (id: string, prefixes: string[], stripPath: boolean): PathApp => ({
  id,
  prefixes,
  stripPath,
  labels: {
    'edgeroute.vhosts': PATHS_HOST,
    ...(prefixes.length === 1 && prefixes[0] === '/' ? {} : { 'edgeroute.path': prefixes.join(',') }),
    ...(stripPath ? { 'edgeroute.stripPath': 'true' } : {}),
  },
});

export const PATH_APPS: readonly PathApp[] = [
  app('/fuzz-paths-root', ['/'], false),
  app('/fuzz-paths-api', ['/api', '/v1/api'], false),
  app('/fuzz-paths-admin', ['/api/admin'], false),
  app('/fuzz-paths-static', ['/static'], true),
  app('/fuzz-paths-odd', ['/a.b', '/s;p', '/~u', '/...'], true),
];

export type Normalized = { ok: true; uri: string } | { ok: false; reason: string };

/**
 * nginx's $uri for the path part of a request target (before "?"):
 * ngx_http_parse_complex_uri with merge_slashes on. A bad or NUL %-escape,
 * or a ".." above the root, is a 400 from nginx.
 */
export function normalizeUri(path: string): Normalized {
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, reason: `a bad %-escape at ${i}` };
    const code = Number.parseInt(hex, 16);
    if (code === 0) return { ok: false, reason: 'an escaped NUL' };
    decoded += String.fromCharCode(code);
    i += 2;
  }
  const parts = decoded.split('/');
  const out: string[] = [];
  for (let k = 1; k < parts.length; k++) {
    const segment = parts[k]!;
    const last = k === parts.length - 1;
    if (segment === '' || segment === '.') {
      if (last) out.push('');
      continue;
    }
    if (segment === '..') {
      if (out.length === 0) return { ok: false, reason: '".." above the root' };
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return { ok: true, uri: `/${out.join('/')}` };
}

/** The app whose prefix is the longest to match `uri` at a "/" boundary, and that prefix. */
export function routeByPath(uri: string): { app: PathApp; prefix: string } | null {
  let best: { app: PathApp; prefix: string } | null = null;
  for (const candidate of PATH_APPS) {
    for (const prefix of candidate.prefixes) {
      const matches = prefix === '/' || (uri.startsWith(prefix) && (uri.length === prefix.length || uri[prefix.length] === '/'));
      if (matches && (best === null || prefix.length > best.prefix.length)) best = { app: candidate, prefix };
    }
  }
  return best;
}

export type PathPrediction =
  | { status: 400; reason: string }
  | {
      status: 200;
      app: PathApp;
      prefix: string;
      uri: string;
      /**
       * The path the backend must receive (before "?"), decoded. A request
       * routed by a path prefix always goes on with the normalized URI
       * (plugin.lua's rewrite_path), which nginx escapes again as it
       * proxies; the shared host routes every request by a prefix.
       */
      backendPath: string;
      /** The query it must receive ("" for none). */
      query: string;
    };

/** What a request for `target` (origin form, latin1) on PATHS_HOST must come to. */
export function predictPathRequest(target: string): PathPrediction {
  const mark = target.indexOf('?');
  const path = mark < 0 ? target : target.slice(0, mark);
  const query = mark < 0 ? '' : target.slice(mark + 1);
  const normalized = normalizeUri(path);
  if (!normalized.ok) return { status: 400, reason: normalized.reason };
  const routed = routeByPath(normalized.uri);
  if (routed === null) throw new Error('the root app serves every path');
  const { app: chosen, prefix } = routed;
  const backendPath = chosen.stripPath && prefix !== '/' ? normalized.uri.slice(prefix.length) || '/' : normalized.uri;
  return { status: 200, app: chosen, prefix, uri: normalized.uri, backendPath, query };
}

/** %XX decoded, byte by byte (latin1), nothing else: what a received path means. */
export function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * What is wrong with the path a backend received, or null: it must never
 * carry a ".." segment, "%2e" or "%2f" (a way past the prefix it was routed
 * by), and when the plugin had to rewrite it, it must mean the predicted one.
 */
export function receivedPathProblem(prediction: Extract<PathPrediction, { status: 200 }>, target: string, received: string): string | null {
  const mark = received.indexOf('?');
  const path = mark < 0 ? received : received.slice(0, mark);
  const query = mark < 0 ? '' : received.slice(mark + 1);
  if (path.split('/').includes('..')) return `a ".." segment reached the backend: ${JSON.stringify(path.slice(0, 200))}`;
  if (/%2e|%2f/i.test(path)) return `an escaped "." or "/" reached the backend: ${JSON.stringify(path.slice(0, 200))}`;
  const expected = prediction.backendPath;
  if (percentDecode(path) !== expected) return `the backend received ${JSON.stringify(path.slice(0, 200))}, expected ${JSON.stringify(expected.slice(0, 200))} (normalized)`;
  if (query !== prediction.query) return `the backend received the query ${JSON.stringify(query.slice(0, 200))}, not ${JSON.stringify(prediction.query.slice(0, 200))}`;
  return null;
}
