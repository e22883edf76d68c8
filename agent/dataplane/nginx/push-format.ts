/** The push as the plugin's admin endpoint (`POST /edgeroute/apps`) and its snapshot file read it. */
import type { TableChange } from '../data-plane.js';

/** A push is a table change as it goes on the wire. */
export type PushBody = TableChange;

/**
 * NDJSON, a header line, then one line per changed app route or
 * {"remove": id}. The plugin stores each route line as sent, so nothing is
 * encoded twice.
 */
export function pushBodyText(body: PushBody): string {
  const lines = [JSON.stringify({ version: body.version, base: body.base })];
  for (const [id, route] of Object.entries(body.apps)) {
    // An app with only a TCP port (edgeroute.tcpPort, no vhosts) is for HAProxy nodes: nginx never holds it.
    const forNginx = route !== null && route.vhosts.length > 0;
    if (forNginx) lines.push(JSON.stringify(route));
    else if (body.base !== null) lines.push(JSON.stringify({ remove: id }));
  }
  return `${lines.join('\n')}\n`;
}
