/**
 * The agent's Redis connection. Routing never waits for Redis: the link
 * reconnects in the background and reports its state for logs and probes.
 * Also the Redis plumbing every command shares: TLS options for rediss://
 * URLs and error messages that say what went wrong without the password.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { describeTarget, describeTargetError, newRedisClient, type RedisTarget } from './redis-target.js';
import { restartWhenEnded } from './restart-ended.js';

/** Debian's CA bundle; nginx-conf gives the plugin the same one, so both sides trust the same CAs. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export class RedisLink {
  readonly client: Redis;
  private closing = false;

  /** `target`: one URL, or a master found through Sentinel (the client follows its failovers). */
  constructor(target: RedisTarget, log: Logger) {
    this.client = newRedisClient(target, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Reconnecting is cheap; coming back late costs shared memory. Through
      // Sentinel a lost master is most often a failover, over once the
      // sentinels name the new one: each try asks them, so try every 500 ms
      // at most rather than back off to 2 s past the election.
      retryStrategy: (attempt) => Math.min(target.kind === 'sentinel' ? 500 : 2_000, 100 * 2 ** Math.min(attempt, 5)),
    });
    const url = describeTarget(target);
    let wasReady = false;
    // A refused password fails every retry the same way: say it once, again only when the cause changes.
    let lastProblem: string | null = null;
    restartWhenEnded(this.client, () => !this.closing, () => log.warn({ url }, 'redis client ended (ioredis gave up); connecting again'));
    this.client.on('ready', () => {
      wasReady = true;
      lastProblem = null;
      log.info({ url }, 'redis connected');
    });
    // Only the message is logged: ioredis's reply errors carry the AUTH command and its password.
    this.client.on('error', (err: Error) => {
      const problem = describeTargetError(target, err);
      if (wasReady) log.warn({ url, err: problem }, 'redis connection lost; retrying');
      else if (problem !== lastProblem) {
        const fields = { url, err: problem };
        if (isRefusal(err)) log.error(fields, 'redis refused the connection; retrying');
        else log.warn(fields, 'cannot connect to redis; retrying');
      }
      lastProblem = problem;
      wasReady = false;
    });
  }

  /** Calls `listener` every time the connection becomes ready (first connect and every reconnect). */
  onReady(listener: () => void): void {
    this.client.on('ready', listener);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  connect(): void {
    this.client.connect().catch(() => undefined);
  }

  /** Resolves true once connected, or false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(value);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.client.disconnect();
  }
}

/**
 * ioredis options for `url`. rediss:// is TLS: the certificate must chain to
 * `caFile` (default: the system bundle) and name the URL's host (an IP must be
 * in its subjectAltName). USER:PASS@ in the URL is an ACL user, which ioredis
 * sends as AUTH USER PASS itself.
 */
export function redisTlsOptions(url: string, caFile: string | null): Pick<RedisOptions, 'tls'> {
  const parsed = tryParse(url);
  if (parsed?.protocol !== 'rediss:') {
    // Someone who gave a CA expects TLS: refuse rather than talk in clear.
    if (caFile) throw new Error(`--redis-ca is only for rediss:// (TLS) URLs, not ${redactUrl(url)}`);
    return {};
  }
  const file = caFile ?? (existsSync(SYSTEM_CA_BUNDLE) ? SYSTEM_CA_BUNDLE : null);
  let ca: string | undefined;
  if (file) {
    try {
      ca = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`--redis-ca: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  // SNI takes names only; Node checks an IP against the certificate's IP entries by itself.
  return { tls: { ...(ca === undefined ? {} : { ca }), ...(isIP(host) ? {} : { servername: host }) } };
}

/**
 * Connects a lazyConnect client. ioredis itself rejects with "Connection is
 * closed." whatever happened, and reports the cause as an error event: the
 * error thrown here names that cause.
 */
export async function connectRedis(client: Redis, where: string | RedisTarget): Promise<void> {
  let cause: Error | null = null;
  const onError = (err: Error) => {
    cause ??= err;
  };
  client.on('error', onError);
  try {
    await client.connect();
  } catch (err) {
    const error = cause ?? (err as Error);
    throw new Error(typeof where === 'string' ? describeRedisError(where, error) : describeTargetError(where, error));
  } finally {
    client.off('error', onError);
  }
}

/** What went wrong talking to Redis at `url`, in words an operator can act on; never the password. */
export function describeRedisError(url: string, err: Error): string {
  const parsed = tryParse(url);
  const where = parsed ? parsed.host : '<invalid url>';
  const user = parsed?.username ? decodeURIComponent(parsed.username) : null;
  const password = parsed?.password ? decodeURIComponent(parsed.password) : '';
  const message = password ? err.message.split(password).join('***') : err.message;
  if (/^(WRONGPASS|ERR invalid password)/.test(message)) {
    return user ? `redis refused the password for user ${user}: ${message}` : `redis refused the password: ${message}`;
  }
  if (/^NOAUTH/.test(message)) return `redis at ${where} wants a user and password (redis://USER:PASSWORD@...): ${message}`;
  if (/^NOPERM/.test(message)) return `redis user ${user ?? 'default'} lacks a permission: ${message}`;
  if (isTlsError(err)) {
    const hint = /wrong version number|packet length too long/i.test(message) ? ' (a plain port? use redis://)' : '';
    return `redis TLS handshake with ${where} failed: ${message}${hint}`;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (parsed?.protocol === 'redis:' && (code === 'ECONNRESET' || code === 'EPIPE' || message === 'Connection is closed.')) {
    return `redis at ${where} closed the connection before answering: ${message} (a TLS port? use rediss://)`;
  }
  return `cannot reach Redis at ${where}: ${message}`;
}

/** Redis answered, and said no: retrying with the same settings cannot help. */
function isRefusal(err: Error): boolean {
  return /^(WRONGPASS|ERR invalid password|NOAUTH|NOPERM)/.test(err.message) || isTlsError(err);
}

function isTlsError(err: Error): boolean {
  const code = String((err as NodeJS.ErrnoException).code ?? '');
  return /^ERR_(TLS|SSL)_|CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH/.test(code) || (err as { library?: string }).library === 'SSL routines';
}

function tryParse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
