/**
 * The systemd units and the logrotate file of a routing node, rendered from
 * templates/ (the examples in nginx/ are the same templates rendered for an
 * npm -g install; a test keeps them equal).
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TEMPLATES_DIR } from '../project-paths.js';

export interface SystemFilePaths {
  /** The node binary and the package's bin/edgeroute.js the agent's unit runs. */
  readonly node: string;
  readonly bin: string;
  readonly nginx: string;
  readonly prefix: string;
  readonly confPath: string;
  readonly configFile: string;
  readonly envFile: string;
  readonly stateDir: string;
  readonly user: string;
}

export const NGINX_UNIT = 'edgeroute-nginx.service';
export const AGENT_UNIT = 'edgeroute-agent.service';

/**
 * Debian's own service for each edgeroute dataplane unit: installing the
 * package enables it on the same ports. A later edgeroute-haproxy.service
 * pairs with haproxy.service here.
 */
export const STOCK_SERVICES: Readonly<Record<string, readonly string[]>> = {
  [NGINX_UNIT]: ['nginx.service'],
};

export interface SystemFile {
  readonly name: string;
  readonly content: string;
}

export function renderUnits(paths: SystemFilePaths): SystemFile[] {
  const values = {
    ...checkedPaths(paths),
    stateDirName: basename(paths.stateDir),
    nginxUnit: NGINX_UNIT,
    conflicts: (STOCK_SERVICES[NGINX_UNIT] ?? []).join(' '),
  };
  return [NGINX_UNIT, AGENT_UNIT].map((name) => ({ name, content: renderTemplate(`${name}.hbs`, values) }));
}

export function renderLogrotate(paths: SystemFilePaths): string {
  return renderTemplate('edgeroute.logrotate.hbs', checkedPaths(paths));
}

function renderTemplate(name: string, values: object): string {
  const template = Handlebars.create().compile(readFileSync(join(TEMPLATES_DIR, name), 'utf8'), { noEscape: true, strict: true });
  return template(values);
}

/**
 * systemd splits ExecStart= at spaces and expands % and $; a shell runs the
 * logrotate script. Rather than quote for both, refuse paths that would need it.
 */
function checkedPaths(paths: SystemFilePaths): SystemFilePaths {
  for (const [key, value] of Object.entries(paths)) {
    if (!/^[A-Za-z0-9_@.,+/:=-]+$/.test(value)) throw new Error(`cannot write the path ${JSON.stringify(value)} (${key}) into a systemd unit: it holds a space or a special character`);
  }
  return paths;
}
