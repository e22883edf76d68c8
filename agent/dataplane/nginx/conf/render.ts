/** Renders templates/nginx.conf.hbs into a ready-to-run nginx prefix folder. */
import Handlebars from 'handlebars';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isCidr } from '../../../policy/cidr.js';
import { dirname, join, resolve } from 'node:path';
import { LUA_DIR, TEMPLATES_DIR } from '../../../project-paths.js';
import { redactUrl, SYSTEM_CA_BUNDLE } from '../../../fleet/redis-link.js';
import { detectFlavor, moduleLines, type Flavor } from './flavor.js';
import { parseListen } from './listen-address.js';
import { upstreamIdleTimeoutSeconds } from '../../upstream-idle-timeout.js';

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
  /** Redis holding split policies (redis://[user:password@]host:port[/db], rediss:// for TLS); none: apps use their default version. */
  readonly redis?: string | null;
  /** CA bundle that signed Redis's certificate (rediss:// only); default: the system bundle. */
  readonly redisCa?: string | null;
  /** The name Redis's certificate must carry (rediss:// only); default: the URL's host. */
  readonly redisTlsName?: string | null;
  readonly redisPrefix?: string;
  /** Find Redis through Sentinel instead of `redis` (not with it): the sentinels' IPs and ports and the master's name. */
  readonly redisSentinel?: {
    readonly sentinels: readonly { readonly host: string; readonly port: number }[];
    readonly master: string;
    readonly user: string | null;
    readonly password: string | null;
    readonly sentinelPassword: string | null;
    /** TLS to the sentinels and the master (redisCa: their CA; redisTlsName: the name every certificate carries, else each one's IP). */
    readonly tls?: boolean;
  } | null;
  readonly policyRefreshSeconds?: number;
  /** nginx variable with the request's region, e.g. geoip2's or http_x_region for a CDN header. */
  readonly regionVar?: string | null;
  /** Also tell clients the chosen version in a response header. */
  readonly versionResponseHeader?: boolean;
  /** Where the agent keeps its last table (the agent's --snapshot-file); null: none. Default: DIR/snapshot.ndjson. */
  readonly snapshotFile?: string | null;
  /** Public TLS listen addresses; they need tlsCert and tlsKey. */
  readonly tlsListen?: readonly string[];
  readonly tlsCert?: string | null;
  readonly tlsKey?: string | null;
  /** Trusted proxies (CIDRs) whose real-IP header gives the client address. */
  readonly realIpFrom?: readonly string[];
  readonly realIpHeader?: string;
  /** Largest request body on the node, nginx size syntax; '0' (default): no limit. */
  readonly maxBodySize?: string;
  /** Seconds an upgraded connection may stay idle. */
  readonly websocketIdleTimeoutSeconds?: number;
  /** Seconds nginx keeps an idle connection to a task for the next request; below the tasks' own idle timeout. */
  readonly upstreamIdleTimeoutSeconds?: number;
}

export interface RenderedConf {
  readonly prefix: string;
  readonly confPath: string;
  readonly tokenFile: string;
  readonly adminToken: string;
  readonly tokenGenerated: boolean;
  readonly flavor: Flavor;
  readonly snapshotFile: string | null;
}

/** What renderNginxConf writes, before it writes it (`edgeroute install` compares it with what is there). */
export interface NginxConfFiles extends RenderedConf {
  /** Folders nginx -p needs but does not create. */
  readonly dirs: readonly string[];
  readonly files: readonly { readonly path: string; readonly content: string; readonly mode: number }[];
}

const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
const MIN_TOKEN_LENGTH = 16;

export function renderNginxConf(opts: NginxConfOptions): RenderedConf {
  const rendered = nginxConfFiles(opts);
  for (const dir of rendered.dirs) mkdirSync(dir, { recursive: true });
  for (const file of rendered.files) {
    writeFileSync(file.path, file.content, { mode: file.mode });
    chmodSync(file.path, file.mode);
  }
  return rendered;
}

/** Renders the folder's files into memory; nothing is written. */
export function nginxConfFiles(opts: NginxConfOptions): NginxConfFiles {
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
  const dirs = [join(prefix, 'logs'), ...TEMP_DIRS.map((dir) => join(prefix, 'temp', dir))];
  const tokenFile = join(prefix, 'admin-token');
  const files = [{ path: tokenFile, content: `${adminToken}\n`, mode: 0o600 }];

  const tlsListen = (opts.tlsListen ?? []).map(parseListen);
  const tls = tlsListen.length === 0 ? null : tlsFiles(opts.tlsCert ?? null, opts.tlsKey ?? null);
  const realIp = (opts.realIpFrom ?? []).length === 0 ? null : realIpSettings(opts.realIpFrom ?? [], opts.realIpHeader ?? 'X-Forwarded-For');
  const snapshotFile = opts.snapshotFile === undefined ? join(prefix, 'snapshot.ndjson') : opts.snapshotFile === null ? null : resolve(opts.snapshotFile);
  const maxBodySize = opts.maxBodySize ?? '0';
  if (!/^\d+[kmg]?$/i.test(maxBodySize)) throw new Error(`max body size "${maxBodySize}" is not an nginx size like 10m`);
  const idleTimeout = opts.websocketIdleTimeoutSeconds ?? 3600;
  if (!(idleTimeout >= 1 && idleTimeout <= 7 * 86_400)) throw new Error('the WebSocket idle timeout must be 1 to 604800 seconds');
  // nginx, not the task, closes an idle connection to a task (upstream-idle-timeout.ts).
  const upstreamIdleTimeout = upstreamIdleTimeoutSeconds(opts.upstreamIdleTimeoutSeconds);
  const sentinel = opts.redisSentinel ?? null;
  if (sentinel && opts.redis) throw new Error('--redis and --redis-sentinels both name Redis: give one of them');
  if (sentinel) {
    for (const s of sentinel.sentinels) {
      if (!/^[0-9.]+$/.test(s.host) && !s.host.includes(':')) throw new Error(`--redis-sentinels ${s.host}: the plugin needs IP addresses, not host names`);
    }
    if (!/^[A-Za-z0-9_.\-]{1,64}$/.test(sentinel.master)) throw new Error(`--redis-master "${sentinel.master}" may hold only letters, digits and _ . -`);
  }
  const redis = opts.redis
    ? parseRedisUrl(opts.redis)
    : sentinel && { host: '', port: 0, db: 0, username: sentinel.user, password: sentinel.password, tls: sentinel.tls === true };
  const redisTls = redisTlsSettings(redis, opts.redisCa ?? null, opts.redisTlsName ?? null);
  if (redis?.password) files.push({ path: join(prefix, 'redis-password'), content: `${redis.password}\n`, mode: 0o600 });
  if (sentinel?.sentinelPassword) files.push({ path: join(prefix, 'redis-sentinel-password'), content: `${sentinel.sentinelPassword}\n`, mode: 0o600 });
  const redisPrefix = opts.redisPrefix ?? 'edgeroute:';
  if (!/^[A-Za-z0-9:_.\-]{0,64}$/.test(redisPrefix)) throw new Error(`--redis-prefix "${redisPrefix}" may hold only letters, digits and : _ . -`);
  if (opts.regionVar && !/^[a-z0-9_]{1,64}$/.test(opts.regionVar)) throw new Error(`--region-var "${opts.regionVar}" is not an nginx variable name (lower case, digits, _)`);

  const handlebars = Handlebars.create();
  handlebars.registerHelper('lua', luaString);
  const template = handlebars.compile(readFileSync(join(TEMPLATES_DIR, 'nginx.conf.hbs'), 'utf8'), { noEscape: true, strict: false });
  const conf = template({
    flavor,
    moduleLines: moduleLines(flavor),
    prefix,
    luaDir: LUA_DIR,
    tokenFile,
    listen: listen.map((l) => l.directive),
    adminListen: adminListen.map((l) => l.directive),
    dictSize: opts.dictSize ?? '64m',
    countersDictSize: '4m',
    maxBodySize,
    upgradeIdleTimeout: idleTimeout,
    httpsPort: httpsPort(tlsListen.map((l) => l.directive)),
    workerProcesses: opts.workerProcesses ?? 'auto',
    workerConnections: opts.workerConnections ?? 4096,
    errorLogLevel: opts.errorLogLevel ?? 'warn',
    accessLog: opts.accessLog ?? 'off',
    syncInterval: opts.syncIntervalSeconds ?? 0.01,
    upstreamKeepalive: 256,
    upstreamKeepaliveTimeout: Number.isInteger(upstreamIdleTimeout) ? `${upstreamIdleTimeout}s` : `${Math.round(upstreamIdleTimeout * 1000)}ms`,
    connectTimeout: '2s',
    redis: redis && {
      host: redis.host,
      port: redis.port,
      db: redis.db,
      username: redis.username,
      passwordFile: redis.password ? join(prefix, 'redis-password') : null,
      tls: redisTls,
      sentinels: sentinel ? sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })) : null,
      masterName: sentinel?.master ?? null,
      sentinelPasswordFile: sentinel?.sentinelPassword ? join(prefix, 'redis-sentinel-password') : null,
    },
    redisPrefix,
    policyRefreshInterval: opts.policyRefreshSeconds ?? 0.5,
    regionVar: opts.regionVar ?? null,
    versionResponseHeader: opts.versionResponseHeader ?? false,
    snapshotFile: snapshotFile,
    tlsListen: tlsListen.map((l) => l.directive),
    tls,
    realIp,
  });
  const confPath = join(prefix, 'nginx.conf');
  files.push({ path: confPath, content: conf, mode: 0o644 });
  return { prefix, confPath, tokenFile, adminToken, tokenGenerated, flavor, snapshotFile, dirs, files };
}

/** Where edgeroute.redirectHttps sends clients: the first TLS listener's port. */
function httpsPort(directives: readonly string[]): number {
  const first = directives[0];
  if (first === undefined || first.startsWith('unix:')) return 443;
  return Number(/(\d+)$/.exec(first)?.[1] ?? 443);
}

function tlsFiles(cert: string | null, key: string | null): { cert: string; key: string } {
  if (!cert || !key) throw new Error('--tls-listen needs --tls-cert and --tls-key');
  for (const file of [cert, key]) if (!existsSync(file)) throw new Error(`TLS file ${file} does not exist`);
  return { cert: resolve(cert), key: resolve(key) };
}

function realIpSettings(from: readonly string[], header: string): { from: string[]; header: string } {
  for (const cidr of from) {
    if (!isCidr(cidr) && cidr !== 'unix:') throw new Error(`--real-ip-from "${cidr}" is not a CIDR (or unix:)`);
  }
  if (!/^[A-Za-z0-9-]{1,64}$/.test(header)) throw new Error(`--real-ip-header "${header}" is not a header name`);
  return { from: [...from], header };
}

interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username: string | null;
  readonly password: string | null;
  readonly tls: boolean;
}

/**
 * What the plugin's TLS handshake checks: the chain against the CA bundle,
 * and the name (nginx's X509_check_host: DNS names in subjectAltName, else
 * the subject CN; it does not read IP entries, so a URL with an IP needs a
 * certificate whose CN is that IP, or --redis-tls-name with a name it has).
 */
function redisTlsSettings(redis: RedisTarget | null, caFile: string | null, name: string | null): { caFile: string; serverName: string | null } | null {
  if (!redis?.tls) {
    if (caFile || name) throw new Error('--redis-ca and --redis-tls-name are only for rediss:// (TLS) URLs');
    return null;
  }
  const ca = resolve(caFile ?? SYSTEM_CA_BUNDLE);
  if (/[\s;"'{}$\\]/.test(ca)) throw new Error(`--redis-ca ${ca}: cannot write this path into nginx.conf`);
  if (!existsSync(ca)) throw new Error(caFile ? `--redis-ca ${caFile} does not exist` : `no system CA bundle at ${SYSTEM_CA_BUNDLE}: give --redis-ca FILE`);
  const hidden = hiddenFromWorkers(ca);
  if (hidden) throw new Error(`--redis-ca ${ca}: nginx's workers (user nobody) load it, and cannot read ${hidden}; make it readable by others (chmod o+r, and o+x on its folders)`);
  // Through Sentinel (no host here) without a name: each certificate is checked against the IP connected to.
  const serverName = name ?? (redis.host === '' ? null : redis.host);
  if (serverName !== null && !/^[A-Za-z0-9.:\-]{1,253}$/.test(serverName)) throw new Error(`--redis-tls-name "${serverName}" is not a host name`);
  return { caFile: ca, serverName };
}

/**
 * nginx's workers, not its master, load lua_ssl_trusted_certificate, and a
 * worker that cannot read it exits for good: nginx -t passes, then nothing
 * serves. Under root (the master's usual user) the workers are `nobody`, so the
 * file needs others' read bit and its folders others' search bit. Returns the
 * first path that lacks it, or null.
 */
function hiddenFromWorkers(file: string): string | null {
  if (process.getuid?.() !== 0) return null;
  if ((statSync(file).mode & 0o004) === 0) return file;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return dir;
    if (dirname(dir) === dir) return null;
  }
}

/** The plugin reaches Redis by IP (cosockets need a resolver for names). */
export function parseRedisUrl(raw: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('--redis is not a URL like redis://127.0.0.1:6379/0');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`--redis ${redactUrl(raw)}: the plugin takes redis:// or rediss:// (TLS)`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!/^[0-9.]+$/.test(host) && !host.includes(':')) throw new Error(`--redis ${redactUrl(raw)}: the plugin needs an IP address, not a host name`);
  const db = url.pathname === '' || url.pathname === '/' ? 0 : Number(url.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0) throw new Error(`--redis ${redactUrl(raw)}: the database must be a number`);
  return {
    host,
    port: url.port === '' ? 6379 : Number(url.port),
    db,
    username: url.username ? decodeURIComponent(url.username) : null,
    password: url.password ? decodeURIComponent(url.password) : null,
    tls: url.protocol === 'rediss:',
  };
}

/** A Lua string literal for a value written into nginx.conf. */
function luaString(value: unknown): string {
  const text = String(value);
  if (/[\u0000-\u001f]/.test(text)) throw new Error(`cannot write ${JSON.stringify(text)} into nginx.conf`);
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
