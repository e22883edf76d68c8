/**
 * The systemd unit of an HAProxy routing node, beside edgeroute-nginx.service:
 * rendered from templates/edgeroute-haproxy.service.hbs for the folder
 * `edgeroute haproxy-conf` wrote.
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPLATES_DIR } from '../../project-paths.js';

export const HAPROXY_UNIT = 'edgeroute-haproxy.service';
/** Debian's own service, which installing haproxy enables on the same ports. */
export const STOCK_HAPROXY_SERVICES: readonly string[] = ['haproxy.service'];
export const DEFAULT_HAPROXY_BINARY = '/usr/sbin/haproxy';

export interface HaproxyUnitPaths {
  readonly haproxy: string;
  readonly confPath: string;
  readonly masterSocket: string;
}

export function renderHaproxyUnit(paths: HaproxyUnitPaths): string {
  for (const [key, value] of Object.entries(paths)) {
    // systemd splits ExecStart= at spaces and expands % and $.
    if (!/^[A-Za-z0-9_@.,+/:=-]+$/.test(value)) throw new Error(`cannot write the path ${JSON.stringify(value)} (${key}) into a systemd unit: it holds a space or a special character`);
  }
  const template = Handlebars.create().compile(readFileSync(join(TEMPLATES_DIR, `${HAPROXY_UNIT}.hbs`), 'utf8'), { noEscape: true, strict: true });
  return template({ ...paths, conflicts: STOCK_HAPROXY_SERVICES.join(' ') });
}
