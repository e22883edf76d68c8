/**
 * What an HAProxy routing node needs (`edgeroute install --data-plane
 * haproxy`), as data, like install-plan.ts for nginx: HAProxy's folder as
 * `edgeroute haproxy-conf` writes it (from the config file's "haproxy-conf"
 * section), edgeroute-haproxy.service, and the agent's unit driving it
 * through the admin socket (`--haproxy-socket`).
 *
 * The agent runs as the edgeroute user: the admin socket is given to its
 * group (mode 660), and HAProxy's workers drop root for the haproxy user
 * that Debian's package creates (unless the section names another). The
 * agent API's token goes to agent.env.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { AGENT_OPTIONS } from '../cli/agent-command.js';
import { HAPROXY_CONF_OPTIONS, haproxyConfOptions } from '../cli/haproxy-conf-command.js';
import { readOptions, stringOption, UsageError } from '../cli/options.js';
import { haproxyConfFiles } from '../dataplane/haproxy/render.js';
import { DEFAULT_HAPROXY_BINARY, HAPROXY_UNIT, renderHaproxyUnit } from '../dataplane/haproxy/unit.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { INSTALL_LAYOUT, underRoot } from './install-layout.js';
import { readConfigText, type InstallPlan, type Owner, type PlannedDir, type PlannedFile } from './install-plan.js';
import { AGENT_UNIT, HAPROXY_DATA_PLANE, renderAgentUnit } from './system-files.js';

/** HAProxy's folder when the config file's "haproxy-conf" section has no "out". */
export const DEFAULT_HAPROXY_DIR = '/etc/edgeroute/haproxy';
/** The user HAProxy's workers run as: Debian's haproxy package creates it. */
export const DEFAULT_HAPROXY_USER = 'haproxy';

const ROOT_OWNED: Owner = { user: 'root', group: 'root' };

export function planHaproxyInstall(configFile: string, root: string): InstallPlan {
  const user = INSTALL_LAYOUT.user;
  const configText = readConfigText(configFile);
  const sections = JSON.parse(configText) as Record<string, Record<string, unknown> | undefined>;
  if (sections['nginx-conf'] !== undefined) throw new UsageError(`--config ${configFile}: an HAProxy node has a "haproxy-conf" section, not "nginx-conf"`);
  const inFile = sections['haproxy-conf'] ?? {};
  for (const key of ['unit', 'check']) if (inFile[key] !== undefined) throw new UsageError(`--config ${configFile}: "haproxy-conf.${key}" is for the haproxy-conf command; install writes and checks the unit itself`);
  // Only the file counts: the units run the agent with this file and agent.env.
  const agent = readOptions(AGENT_OPTIONS, ['--config', configFile], {}, false, 'agent');
  for (const key of ['nginx-admin', 'snapshot-file']) {
    if (stringOption(agent, key) !== null) throw new UsageError(`--config ${configFile}: "agent.${key}" is for nginx nodes; an HAProxy node's agent drives HAProxy through its admin socket`);
  }
  const defaults = [...(inFile.out === undefined ? ['--out', DEFAULT_HAPROXY_DIR] : []), ...(inFile['admin-socket-group'] === undefined ? ['--admin-socket-group', user] : []), ...(inFile.user === undefined ? ['--user', DEFAULT_HAPROXY_USER] : [])];
  const haproxyValues = readOptions(HAPROXY_CONF_OPTIONS, ['--config', configFile, ...defaults], {}, false, 'haproxy-conf');
  const options = haproxyConfOptions(haproxyValues);
  if (!isAbsolute(options.outDir)) throw new UsageError(`--config ${configFile}: "haproxy-conf.out" must be an absolute path`);
  if (options.adminSocketGroup !== user) throw new UsageError(`--config ${configFile}: "haproxy-conf.admin-socket-group" must be ${user}: the agent runs as that user and drives HAProxy through the socket`);
  let haproxy;
  try {
    haproxy = haproxyConfFiles(options);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const inAgent = stringOption(agent, 'haproxy-socket');
  if (inAgent !== null && resolve(inAgent) !== haproxy.adminSocket) {
    throw new UsageError(`"agent.haproxy-socket" (${inAgent}) and HAProxy's admin socket (${haproxy.adminSocket}, "haproxy-conf.admin-socket") must be the same: the agent drives HAProxy through it`);
  }

  const binary = stringOption(haproxyValues, 'haproxy') ?? DEFAULT_HAPROXY_BINARY;
  const packagePaths = { node: process.execPath, bin: join(PROJECT_ROOT, 'bin', 'edgeroute.js') };
  const agentReadable: Owner = { user: 'root', group: user };
  const token = apiToken(stringOption(agent, 'api-token') ?? stringOption(agent, 'admin-token'), underRoot(root, INSTALL_LAYOUT.envFile));

  const dirs: PlannedDir[] = [
    { path: INSTALL_LAYOUT.etcDir, mode: 0o755, owner: ROOT_OWNED, enforce: false },
    // The agent passes through to the admin socket in run/.
    ...haproxy.dirs.map((path) => ({ path, mode: 0o755, owner: ROOT_OWNED, enforce: false })),
    { path: INSTALL_LAYOUT.stateDir, mode: 0o750, owner: { user, group: user }, enforce: true },
  ];
  const certs = stringOption(agent, 'certs');
  // The agent reads the certificates it puts into HAProxy's memory; their folder is left alone when it exists.
  if (certs) dirs.push({ path: resolve(certs), mode: 0o750, owner: agentReadable, enforce: false });
  const files: PlannedFile[] = [
    // The config may hold Marathon and Redis passwords.
    { path: INSTALL_LAYOUT.configFile, content: configText, mode: 0o640, owner: agentReadable, role: 'agent' },
    { path: INSTALL_LAYOUT.envFile, content: `# Written by edgeroute install: the agent's secrets.\nEDGEROUTE_API_TOKEN=${token}\n`, mode: 0o640, owner: agentReadable, role: 'agent' },
    // Read by HAProxy's master (root) only; the maps are HAProxy's runtime's once it runs.
    ...haproxy.files.map((file) => ({ path: file.path, content: file.content, mode: file.mode, owner: ROOT_OWNED, role: 'haproxy' as const, ...(file.keep ? { keep: true } : {}) })),
    { path: join(INSTALL_LAYOUT.unitDir, HAPROXY_UNIT), content: renderHaproxyUnit({ haproxy: binary, confPath: haproxy.confPath, masterSocket: haproxy.masterSocket }), mode: 0o644, owner: ROOT_OWNED, role: 'unit' },
    {
      path: join(INSTALL_LAYOUT.unitDir, AGENT_UNIT),
      content: renderAgentUnit({ ...packagePaths, prefix: haproxy.dir, configFile: INSTALL_LAYOUT.configFile, envFile: INSTALL_LAYOUT.envFile, stateDir: INSTALL_LAYOUT.stateDir, user }, HAPROXY_DATA_PLANE, ['--haproxy-socket', haproxy.adminSocket]).content,
      mode: 0o644,
      owner: ROOT_OWNED,
      role: 'unit',
    },
  ];
  const paths = { ...packagePaths, nginx: binary, prefix: haproxy.dir, confPath: haproxy.confPath, configFile: INSTALL_LAYOUT.configFile, envFile: INSTALL_LAYOUT.envFile, stateDir: INSTALL_LAYOUT.stateDir, user };
  return { dirs, files, paths, units: [HAPROXY_UNIT, AGENT_UNIT], dataPlane: HAPROXY_DATA_PLANE };
}

/**
 * The agent API's token: the config file's, else EDGEROUTE_API_TOKEN, else
 * the one installed before (so a second run changes nothing), else a new one.
 */
function apiToken(inConfig: string | null, installedEnv: string): string {
  if (inConfig) return inConfig;
  if (process.env.EDGEROUTE_API_TOKEN) return process.env.EDGEROUTE_API_TOKEN;
  if (existsSync(installedEnv)) {
    const before = /^EDGEROUTE_API_TOKEN=(\S+)$/m.exec(readFileSync(installedEnv, 'utf8'))?.[1];
    if (before) return before;
  }
  return randomBytes(24).toString('hex');
}
