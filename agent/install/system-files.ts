/**
 * The systemd units and the logrotate file of a routing node, rendered from
 * templates/ (the examples in nginx/ are the same templates rendered for an
 * npm -g install; a test keeps them equal).
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HAPROXY_UNIT, STOCK_HAPROXY_SERVICES } from '../dataplane/haproxy/unit.js';
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
 * package enables it on the same ports.
 */
export const STOCK_SERVICES: Readonly<Record<string, readonly string[]>> = {
  [NGINX_UNIT]: ['nginx.service'],
  [HAPROXY_UNIT]: STOCK_HAPROXY_SERVICES,
};

/** The unit that runs a node's data plane, and the role of the files it reads (a change reloads it). */
export interface DataPlaneUnit {
  /** How the agent's unit names it ("nginx"). */
  readonly name: string;
  readonly unit: string;
  readonly role: 'nginx' | 'haproxy';
}

export const NGINX_DATA_PLANE: DataPlaneUnit = { name: 'nginx', unit: NGINX_UNIT, role: 'nginx' };
export const HAPROXY_DATA_PLANE: DataPlaneUnit = { name: 'HAProxy', unit: HAPROXY_UNIT, role: 'haproxy' };

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
  return [{ name: NGINX_UNIT, content: renderTemplate(`${NGINX_UNIT}.hbs`, values) }, renderAgentUnit(paths, NGINX_DATA_PLANE, [])];
}

/** The agent's unit, started after the data plane's; `flags` follow `--config FILE` on its command line. */
export function renderAgentUnit(paths: Pick<SystemFilePaths, 'node' | 'bin' | 'configFile' | 'envFile' | 'stateDir' | 'user'> & { readonly prefix: string }, dataPlane: DataPlaneUnit, flags: readonly string[]): SystemFile {
  checkedPaths({ ...paths, ...Object.fromEntries(flags.map((flag, i) => [`flag ${i + 1}`, flag])) });
  const secrets = dataPlane.role === 'nginx' ? `EDGEROUTE_ADMIN_TOKEN: the token in ${paths.prefix}/admin-token` : "EDGEROUTE_API_TOKEN: the token of the agent API's writes";
  const values = { ...paths, secrets, stateDirName: basename(paths.stateDir), dataPlaneUnit: dataPlane.unit, dataPlaneName: dataPlane.name, agentFlags: flags };
  return { name: AGENT_UNIT, content: renderTemplate(`${AGENT_UNIT}.hbs`, values) };
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
function checkedPaths<T extends object>(paths: T): T {
  for (const [key, value] of Object.entries(paths) as [string, string][]) {
    if (!/^[A-Za-z0-9_@.,+/:=-]+$/.test(value)) throw new Error(`cannot write the path ${JSON.stringify(value)} (${key}) into a systemd unit: it holds a space or a special character`);
  }
  return paths;
}
