/**
 * Where Redis is: one URL (--redis), or a master found through Redis Sentinel
 * (--redis-sentinels HOST:PORT,... --redis-master NAME). Every command that
 * talks to Redis reads the same flags through here and builds its ioredis
 * client with newRedisClient, so the agent and the CLI follow a failover the
 * same way.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { connectRedis, describeRedisError, redactUrl, redisTlsOptions, SYSTEM_CA_BUNDLE } from './redis-link.js';
import { existsSync, readFileSync } from 'node:fs';
import type { OptionSpec } from '../cli/options.js';

export interface SentinelAddress {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'url'; readonly url: string; readonly caFile: string | null }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly SentinelAddress[];
      readonly master: string;
      /** ACL user and password of the master (and its replicas); null: none. */
      readonly user: string | null;
      readonly password: string | null;
      /** The sentinels' own password (their requirepass); null: none. */
      readonly sentinelPassword: string | null;
      /** TLS to the master and to the sentinels. */
      readonly tls: boolean;
      readonly caFile: string | null;
    };

/** The flags every Redis-using command adds next to its --redis, --redis-ca and --redis-prefix. */
export const SENTINEL_OPTIONS: readonly OptionSpec[] = [
  { name: 'redis-sentinels', kind: 'string', help: 'find Redis through Sentinel instead of --redis: the sentinels, HOST:PORT[,HOST:PORT...]' },
  { name: 'redis-master', kind: 'string', help: 'with --redis-sentinels: the name the sentinels monitor the master by' },
  { name: 'redis-user', kind: 'string', help: "with --redis-sentinels: the master's ACL user (with --redis, put it in the URL)" },
  { name: 'redis-password', kind: 'string', help: "with --redis-sentinels: the master's password (EDGEROUTE_REDIS_PASSWORD keeps it out of ps)" },
  { name: 'redis-sentinel-password', kind: 'string', help: "with --redis-sentinels: the sentinels' own password, when they have one" },
  { name: 'redis-tls', kind: 'boolean', help: 'with --redis-sentinels: TLS to the master and the sentinels (--redis-ca: their CA)' },
];

type Values = Record<string, string | boolean | string[] | undefined>;

function text(values: Values, name: string): string | null {
  const value = values[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * The target the flags name, or an Error saying what is wrong with them.
 * `defaultUrl`: the URL when no flag names Redis (null: Redis is optional, and
 * the result is null then).
 */
export function redisTargetFromOptions(values: Values, defaultUrl: string | null): RedisTarget | null {
  const url = text(values, 'redis');
  const sentinels = text(values, 'redis-sentinels');
  const master = text(values, 'redis-master');
  const caFile = text(values, 'redis-ca');
  const sentinelOnly = ['redis-user', 'redis-password', 'redis-sentinel-password'].filter((n) => text(values, n) !== null);
  if (values['redis-tls'] === true) sentinelOnly.push('redis-tls');
  if (sentinels === null && master === null) {
    if (sentinelOnly.length > 0) {
      throw new Error(`--${sentinelOnly[0]} is for --redis-sentinels; with --redis, put the user and password in the URL (redis://USER:PASSWORD@host:port) and use rediss:// for TLS`);
    }
    const chosen = url ?? defaultUrl;
    if (chosen === null) return null;
    redisTlsOptions(chosen, caFile); // throws on --redis-ca without rediss://
    return { kind: 'url', url: chosen, caFile };
  }
  if (url !== null) throw new Error('--redis and --redis-sentinels both name Redis: give one of them (--redis-sentinels with --redis-master)');
  if (sentinels === null) throw new Error('--redis-master needs --redis-sentinels HOST:PORT[,HOST:PORT...]');
  if (master === null) throw new Error('--redis-sentinels needs --redis-master NAME, the name the sentinels monitor the master by');
  const tls = values['redis-tls'] === true;
  if (caFile !== null && !tls) throw new Error('--redis-ca is for TLS: with --redis-sentinels, add --redis-tls');
  return {
    kind: 'sentinel',
    sentinels: parseSentinels(sentinels),
    master,
    user: text(values, 'redis-user'),
    password: text(values, 'redis-password'),
    sentinelPassword: text(values, 'redis-sentinel-password'),
    tls,
    caFile,
  };
}

/** "h1:26379,h2:26379" -> addresses; an Error names the entry it cannot read. */
export function parseSentinels(list: string): SentinelAddress[] {
  const addresses = list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(entry);
      const port = match ? Number(match[3]) : 0;
      if (!match || port < 1 || port > 65535) throw new Error(`--redis-sentinels: "${entry}" is not HOST:PORT`);
      return { host: match[1] ?? match[2] ?? '', port };
    });
  if (addresses.length === 0) throw new Error('--redis-sentinels: name at least one sentinel, HOST:PORT');
  return addresses;
}

/** Where the target is, for logs and messages: never a password. */
export function describeTarget(target: RedisTarget): string {
  if (target.kind === 'url') return redactUrl(target.url);
  return `master ${target.master} via sentinels ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}

/** What went wrong talking to the target, for an operator; never a password. */
export function describeTargetError(target: RedisTarget, err: Error): string {
  if (target.kind === 'url') return describeRedisError(target.url, err);
  let message = err.message;
  for (const secret of [target.password, target.sentinelPassword]) if (secret) message = message.split(secret).join('***');
  if (/^(WRONGPASS|ERR invalid password)/.test(message)) return `redis refused the password${target.user ? ` for user ${target.user}` : ''}: ${message}`;
  if (/^NOAUTH/.test(message)) return `redis (${describeTarget(target)}) wants a password (--redis-password): ${message}`;
  if (/All sentinels are unreachable/i.test(message)) return `no sentinel answered for ${describeTarget(target)}: ${message}`;
  return `cannot reach Redis ${describeTarget(target)}: ${message}`;
}

/**
 * A client for the target. A Sentinel client asks the sentinels for the
 * master at every (re)connect, listens for +switch-master, and on a READONLY
 * reply (it reached a master demoted by a failover) reconnects and sends the
 * command again to the new master.
 */
export function newRedisClient(target: RedisTarget, options: RedisOptions): Redis {
  if (target.kind === 'url') return new Redis(target.url, { ...options, ...redisTlsOptions(target.url, target.caFile) });
  const tls = target.tls ? sentinelTls(target.caFile) : undefined;
  return new Redis({
    // Sentinels are asked in turn; when none answers, try again soon, bounded like the client's own retries.
    sentinelRetryStrategy: (attempt: number) => Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)),
    ...options,
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.master,
    ...(target.user ? { username: target.user } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    failoverDetector: true,
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  });
}

function sentinelTls(caFile: string | null): { ca?: string } {
  const file = caFile ?? (existsSync(SYSTEM_CA_BUNDLE) ? SYSTEM_CA_BUNDLE : null);
  if (!file) return {};
  try {
    return { ca: readFileSync(file, 'utf8') };
  } catch (err) {
    throw new Error(`--redis-ca: cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Connects a lazyConnect client to the target. Through Sentinel, a failover
 * in progress is waited out: the client keeps asking the sentinels (its
 * retry strategies bound how long) until a master answers; the error names
 * the last cause.
 */
export async function connectTarget(client: Redis, target: RedisTarget): Promise<void> {
  if (target.kind === 'url') return connectRedis(client, target);
  let cause: Error | null = null;
  const onError = (err: Error) => {
    cause = err;
  };
  client.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const onEnd = () => reject(new Error(describeTargetError(target, cause ?? new Error('gave up reconnecting'))));
      client.once('ready', () => {
        client.off('end', onEnd);
        resolve();
      });
      client.once('end', onEnd);
      client.connect().catch(() => undefined);
    });
  } finally {
    client.off('error', onError);
  }
}
