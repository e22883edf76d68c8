/** Renders templates/nginx.conf.hbs into a ready-to-run nginx prefix folder. */
import Handlebars from 'handlebars';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LUA_DIR, TEMPLATES_DIR } from '../project-paths.js';
import { detectFlavor, moduleLines, type Flavor } from './flavor.js';
import { parseListen } from './listen-address.js';

export interface NginxConfOptions {
  readonly outDir: string;
  readonly listen: readonly string[];
  readonly adminListen: readonly string[];
  readonly flavor?: Flavor | 'auto';
  /** The shared admin token; a random one is generated when absent. */
  readonly adminToken?: string;
  readonly dictSize?: string;
  readonly workerProcesses?: number | 'auto';
  readonly workerConnections?: number;
  readonly errorLogLevel?: string;
  readonly accessLog?: string;
  readonly syncIntervalSeconds?: number;
}

export interface RenderedConf {
  readonly prefix: string;
  readonly confPath: string;
  readonly tokenFile: string;
  readonly adminToken: string;
  readonly tokenGenerated: boolean;
  readonly flavor: Flavor;
}

const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
const MIN_TOKEN_LENGTH = 16;

export function renderNginxConf(opts: NginxConfOptions): RenderedConf {
  const flavor = opts.flavor === undefined || opts.flavor === 'auto' ? detectFlavor() : opts.flavor;
  if (flavor === null) {
    throw new Error('no nginx with the Lua module found: install Debian\'s nginx-extras (npm run system-deps) or OpenResty, or pass --flavor');
  }
  if (opts.listen.length === 0) throw new Error('at least one --listen address is needed');
  if (opts.adminListen.length === 0) throw new Error('at least one --admin-listen address is needed');
  const listen = opts.listen.map(parseListen);
  const adminListen = opts.adminListen.map(parseListen);
  const exposed = adminListen.find((a) => !a.loopbackOnly);
  if (exposed) {
    throw new Error(`--admin-listen ${exposed.directive} is not a loopback address or unix socket; the admin endpoint must not be reachable from the network`);
  }
  const tokenGenerated = opts.adminToken === undefined || opts.adminToken === '';
  const adminToken = tokenGenerated ? randomBytes(24).toString('hex') : (opts.adminToken as string);
  if (adminToken.length < MIN_TOKEN_LENGTH || /\s/.test(adminToken)) {
    throw new Error(`the admin token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }

  const prefix = resolve(opts.outDir);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  for (const dir of TEMP_DIRS) mkdirSync(join(prefix, 'temp', dir), { recursive: true });
  const tokenFile = join(prefix, 'admin-token');
  writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);

  const template = Handlebars.compile(readFileSync(join(TEMPLATES_DIR, 'nginx.conf.hbs'), 'utf8'), { noEscape: true, strict: true });
  const conf = template({
    flavor,
    moduleLines: moduleLines(flavor),
    prefix,
    luaDir: LUA_DIR,
    tokenFile,
    listen: listen.map((l) => l.directive),
    adminListen: adminListen.map((l) => l.directive),
    dictSize: opts.dictSize ?? '64m',
    workerProcesses: opts.workerProcesses ?? 'auto',
    workerConnections: opts.workerConnections ?? 4096,
    errorLogLevel: opts.errorLogLevel ?? 'warn',
    accessLog: opts.accessLog ?? 'off',
    syncInterval: opts.syncIntervalSeconds ?? 0.05,
    upstreamKeepalive: 256,
    connectTimeout: '2s',
  });
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  return { prefix, confPath, tokenFile, adminToken, tokenGenerated, flavor };
}
