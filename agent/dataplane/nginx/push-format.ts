/** The push as the plugin's admin endpoint (`POST /edgeroute/apps`) and its snapshot file read it. */
import type { AppRoute } from '../../core/routing-table.js';
import type { TableChange } from '../data-plane.js';

/** A push is a table change as it goes on the wire. */
export type PushBody = TableChange;

/**
 * NDJSON, a header line, then one line per changed app route or
 * {"remove": id}. The plugin stores each route line as sent, so nothing is
 * encoded twice.
 */
export function pushBodyText(body: PushBody): string {
  return [...pushBodyChunks(body, Infinity)].join('');
}

/**
 * The same text in pieces of about `size` characters, each built when it is
 * asked for: a whole table (12.7 MB of text at 10,000 apps) is then never
 * held at once, nor twice (its lines and their join).
 */
export function* pushBodyChunks(body: PushBody, size = 65_536): Generator<string> {
  let chunk = `${JSON.stringify({ version: body.version, base: body.base })}\n`;
  for (const [id, route] of Object.entries(body.apps)) {
    const line = pushLine(id, route, body.base !== null);
    if (line === null) continue;
    chunk += `${line}\n`;
    if (chunk.length >= size) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

function pushLine(id: string, route: AppRoute | null, delta: boolean): string | null {
  // An app with only a TCP port (edgeroute.tcpPort, no vhosts) is for HAProxy nodes: nginx never holds it.
  if (route !== null && route.vhosts.length > 0) return JSON.stringify(route);
  return delta ? JSON.stringify({ remove: id }) : null;
}
