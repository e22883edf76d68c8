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
  for (const [id, route] of Object.entries(body.apps)) lines.push(route === null ? JSON.stringify({ remove: id }) : JSON.stringify(route));
  return `${lines.join('\n')}\n`;
}
