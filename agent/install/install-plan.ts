/**
 * What a routing node needs, as data: the folders and files `edgeroute
 * install` owns, with their modes and owners, and the config it read. Nothing
 * is written here; apply-files.ts compares the plan with the disk.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { AGENT_OPTIONS } from '../cli/agent-command.js';
import { NGINX_CONF_OPTIONS, nginxConfOptions } from '../cli/nginx-conf-command.js';
import { readOptions, stringOption, UsageError } from '../cli/options.js';
import { defaultNginxBinary } from '../dataplane/nginx/conf/flavor.js';
import { parseListen } from '../dataplane/nginx/conf/listen-address.js';
import { nginxConfFiles } from '../dataplane/nginx/conf/render.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { INSTALL_LAYOUT, underRoot } from './install-layout.js';
import { renderLogrotate, renderUnits, AGENT_UNIT, NGINX_DATA_PLANE, NGINX_UNIT, type DataPlaneUnit, type SystemFilePaths } from './system-files.js';

export interface Owner {
  readonly user: string;
  readonly group: string;
}

export interface PlannedDir {
  /** The path on the node (before --root). */
  readonly path: string;
  readonly mode: number;
  readonly owner: Owner;
  /**
   * Also correct the mode and owner of a folder that exists. Off for nginx's
   * logs/ and temp/: nginx hands those to its workers' user itself.
   */
  readonly enforce: boolean;
}

/** What a file is for: which running service reads it, so that a change restarts or reloads the right one. */
export type FileRole = 'nginx' | 'haproxy' | 'agent' | 'unit' | 'logrotate';

export interface PlannedFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
  readonly owner: Owner;
  readonly role: FileRole;
  /** Written only when absent (a map the data plane's runtime owns once it runs); its mode is still enforced. */
  readonly keep?: boolean;
}

export interface InstallPlan {
  readonly dirs: readonly PlannedDir[];
  readonly files: readonly PlannedFile[];
  readonly paths: SystemFilePaths;
  readonly units: readonly string[];
  /** The unit of the node's data plane, and the role of the files it reads. */
  readonly dataPlane: DataPlaneUnit;
}

const ROOT_OWNED: Owner = { user: 'root', group: 'root' };

export function planInstall(configFile: string, root: string): InstallPlan {
  const user = INSTALL_LAYOUT.user;
  const configText = readConfigText(configFile);
  const sections = JSON.parse(configText) as Record<string, Record<string, unknown> | undefined>;
  // Only the file counts: the units run the agent with this file and
  // agent.env, not with the environment of whoever ran install.
  const agent = readOptions(AGENT_OPTIONS, ['--config', configFile], {}, false, 'agent');
  const outInFile = sections['nginx-conf']?.out;
  const nginxValues = readOptions(NGINX_CONF_OPTIONS, ['--config', configFile, ...(outInFile === undefined ? ['--out', INSTALL_LAYOUT.defaultNginxPrefix] : [])], {}, false, 'nginx-conf');
  const nginxOptions = nginxConfOptions(nginxValues);
  if (!isAbsolute(nginxOptions.outDir)) throw new UsageError(`--config ${configFile}: "nginx-conf.out" must be an absolute path`);

  const snapshotFile = agentSnapshotFile(stringOption(nginxValues, 'snapshot-file'), stringOption(agent, 'snapshot-file'));
  const prefix = resolve(nginxOptions.outDir);
  let nginx;
  try {
    nginx = nginxConfFiles({ ...nginxOptions, adminToken: adminToken(stringOption(nginxValues, 'admin-token'), underRoot(root, join(prefix, 'admin-token'))), snapshotFile });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  const paths: SystemFilePaths = {
    node: process.execPath,
    bin: join(PROJECT_ROOT, 'bin', 'edgeroute.js'),
    nginx: defaultNginxBinary(nginx.flavor),
    prefix,
    confPath: nginx.confPath,
    configFile: INSTALL_LAYOUT.configFile,
    envFile: INSTALL_LAYOUT.envFile,
    stateDir: INSTALL_LAYOUT.stateDir,
    user,
  };
  const agentReadable: Owner = { user: 'root', group: user };
  const env = [`EDGEROUTE_ADMIN_TOKEN=${nginx.adminToken}`];
  if (snapshotFile) env.push(`EDGEROUTE_SNAPSHOT_FILE=${snapshotFile}`);
  const nginxAdmin = agentNginxAdmin(stringOption(agent, 'nginx-admin'), sections.agent?.['nginx-admin'] !== undefined, nginxOptions.adminListen[0]);
  if (nginxAdmin) env.push(`EDGEROUTE_NGINX_ADMIN=${nginxAdmin}`);

  const dirs: PlannedDir[] = [
    { path: INSTALL_LAYOUT.etcDir, mode: 0o755, owner: ROOT_OWNED, enforce: false },
    // nginx's workers (nobody) pass through the prefix to their temp/ folders.
    { path: prefix, mode: 0o755, owner: ROOT_OWNED, enforce: false },
    ...nginx.dirs.map((path) => ({ path, mode: 0o755, owner: ROOT_OWNED, enforce: false })),
    { path: INSTALL_LAYOUT.stateDir, mode: 0o750, owner: { user, group: user }, enforce: true },
  ];
  const certs = stringOption(agent, 'certs');
  // The agent reads the certificates it serves; their folder is left alone when it exists.
  if (certs) dirs.push({ path: resolve(certs), mode: 0o750, owner: agentReadable, enforce: false });

  const files: PlannedFile[] = [
    // The config may hold Marathon and Redis passwords.
    { path: INSTALL_LAYOUT.configFile, content: configText, mode: 0o640, owner: agentReadable, role: 'agent' },
    { path: INSTALL_LAYOUT.envFile, content: `# Written by edgeroute install: the agent's secrets and the settings it shares with nginx.\n${env.join('\n')}\n`, mode: 0o640, owner: agentReadable, role: 'agent' },
    // Read by nginx's master (root) only.
    ...nginx.files.map((file) => ({ ...file, owner: ROOT_OWNED, role: 'nginx' as const })),
    ...renderUnits(paths).map((unit) => ({ path: join(INSTALL_LAYOUT.unitDir, unit.name), content: unit.content, mode: 0o644, owner: ROOT_OWNED, role: 'unit' as const })),
    { path: INSTALL_LAYOUT.logrotateFile, content: renderLogrotate(paths), mode: 0o644, owner: ROOT_OWNED, role: 'logrotate' },
  ];
  return { dirs, files, paths, units: [NGINX_UNIT, AGENT_UNIT], dataPlane: NGINX_DATA_PLANE };
}

/** The config file's text, refused with a usage error when it cannot be read or is not JSON. */
export function readConfigText(configFile: string): string {
  let text;
  try {
    text = readFileSync(configFile, 'utf8');
    JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${configFile}: ${(err as Error).message}`);
  }
  return text;
}

/**
 * nginx loads the snapshot the agent writes, so both sections must name the
 * same file, and it must be in the agent's state folder: the agent may write
 * there, and nowhere that root's nginx reads its config from.
 */
function agentSnapshotFile(inNginxConf: string | null, inAgent: string | null): string | null {
  if (inNginxConf === 'off') {
    if (inAgent) throw new UsageError('"nginx-conf.snapshot-file" is off but "agent.snapshot-file" is set; nginx would never load it');
    return null;
  }
  const file = resolve(inNginxConf ?? inAgent ?? join(INSTALL_LAYOUT.stateDir, 'snapshot.ndjson'));
  if (inNginxConf && inAgent && resolve(inAgent) !== file) {
    throw new UsageError(`"nginx-conf.snapshot-file" (${inNginxConf}) and "agent.snapshot-file" (${inAgent}) must be the same file: nginx loads what the agent writes`);
  }
  if (dirname(file) !== INSTALL_LAYOUT.stateDir) {
    throw new UsageError(`the snapshot file ${file} must be in ${INSTALL_LAYOUT.stateDir}/, the only folder the agent (user ${INSTALL_LAYOUT.user}) may write; e.g. ${INSTALL_LAYOUT.stateDir}/snapshot.ndjson`);
  }
  return file;
}

/**
 * The token the config file gives, else EDGEROUTE_ADMIN_TOKEN, else the one
 * installed before (so a second run changes nothing), else none: the
 * renderer generates one.
 */
function adminToken(inConfig: string | null, installedFile: string): string | undefined {
  if (inConfig) return inConfig;
  if (process.env.EDGEROUTE_ADMIN_TOKEN) return process.env.EDGEROUTE_ADMIN_TOKEN;
  if (existsSync(installedFile)) return readFileSync(installedFile, 'utf8').trim() || undefined;
  return undefined;
}

/** When the agent section names no nginx admin URL, the first admin listener nginx-conf writes (the defaults agree, a changed listener would not). */
function agentNginxAdmin(current: string | null, inFile: boolean, firstAdminListen: string | undefined): string | null {
  if (inFile || firstAdminListen === undefined) return null;
  const listen = parseListen(firstAdminListen);
  if (listen.directive.startsWith('unix:')) return null;
  const url = `http://${listen.directive}`;
  return url === current ? null : url;
}
