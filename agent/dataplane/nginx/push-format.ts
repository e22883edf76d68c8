/** The push as the plugin's admin endpoint (`POST /edgeroute/apps`) and its snapshot file read it. */
import type { AppRoute, VersionRoute } from '../../core/routing-table.js';
import type { TableChange } from '../data-plane.js';

/** A push is a table change as it goes on the wire. */
export type PushBody = TableChange;

/**
 * How a version's backends are written: as objects (every plugin reads
 * them), or as one flat array `backendsFlat` (id, address, port, weight, …)
 * for a plugin whose status lists "backendsFlat" in `push_features`. At
 * 10,000 apps the flat push is 9.4 MB instead of 12.7, and nginx decodes it
 * in about 60 % of the time: one Lua table per version instead of one per
 * backend.
 */
export type BackendShape = 'objects' | 'flat';

/**
 * NDJSON, a header line, then one line per changed app route or
 * {"remove": id}. The plugin stores each route line as sent, so nothing is
 * encoded twice.
 */
export function pushBodyText(body: PushBody, shape: BackendShape = 'objects'): string {
  return [...pushBodyChunks(body, Infinity, shape)].join('');
}

/**
 * The same text in pieces of about `size` characters, each built when it is
 * asked for: a whole table (9.4-12.7 MB of text at 10,000 apps) is then never
 * held at once, nor twice (its lines and their join).
 */
export function* pushBodyChunks(body: PushBody, size = 65_536, shape: BackendShape = 'objects'): Generator<string> {
  let chunk = `${JSON.stringify({ version: body.version, base: body.base })}\n`;
  for (const [id, route] of Object.entries(body.apps)) {
    const line = pushLine(id, route, body.base !== null, shape);
    if (line === null) continue;
    chunk += `${line}\n`;
    if (chunk.length >= size) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

function pushLine(id: string, route: AppRoute | null, delta: boolean, shape: BackendShape): string | null {
  // An app with only a TCP port (edgeroute.tcpPort, no vhosts) is for HAProxy nodes: nginx never holds it.
  if (route !== null && route.vhosts.length > 0) return JSON.stringify(shape === 'flat' ? withFlatBackends(route) : route);
  return delta ? JSON.stringify({ remove: id }) : null;
}

type FlatVersion = Omit<VersionRoute, 'backends'> & { backendsFlat: Array<string | number> };

function withFlatBackends(route: AppRoute): Omit<AppRoute, 'versions'> & { versions: Record<string, FlatVersion> } {
  // Version names are data, as in the route itself.
  const versions: Record<string, FlatVersion> = Object.create(null) as Record<string, FlatVersion>;
  for (const [name, version] of Object.entries(route.versions)) {
    const { backends, ...rest } = version;
    const flat: Array<string | number> = new Array<string | number>(backends.length * 4);
    let i = 0;
    for (const backend of backends) {
      flat[i++] = backend.id;
      flat[i++] = backend.address;
      flat[i++] = backend.port;
      flat[i++] = backend.weight;
    }
    versions[name] = { ...rest, backendsFlat: flat };
  }
  return { ...route, versions };
}
