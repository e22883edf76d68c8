/**
 * The fleet's ACME state in Redis (prefix `edgeroute:` by default):
 *
 *   acme:account            hash, field directory URL → JSON {"keyPem", "url"}: the ACME account
 *   acme:cert:<name>        string, JSON {"name", "certPem", "keyPem", "notBefore", "notAfter", "issuedAt", "by"},
 *                           expiring a week after the certificate does
 *   acme:lock:<name>        string, the ordering node's id, with an expiry (SET NX PX), renewed while it orders
 *   acme:challenges         hash, field HTTP-01 token → JSON {"keyAuthorization", "name", "expiresAt"}
 *   acme:status             hash, field name → JSON {"failures", "error", "failedAt", "retryAt", "node"} while a name fails
 *   acme:changed            pub/sub channel, message "challenges" or "cert:<name>" or "status:<name>"
 *
 * Private keys (the account's and the certificates') live only here: every
 * reader keeps them in memory and hands them to nginx, never to a log.
 */
import type { Redis } from 'ioredis';

export interface StoredAccount {
  readonly keyPem: string;
  /** The account's URL at the directory, once registered. */
  readonly url: string | null;
}

export interface StoredCertificate {
  readonly name: string;
  /** Leaf first, then the chain, as the CA sent it. */
  readonly certPem: string;
  readonly keyPem: string;
  /** ISO-8601. */
  readonly notBefore: string;
  readonly notAfter: string;
  readonly issuedAt: string;
  /** The node that ordered it. */
  readonly by: string;
}

export interface StoredChallenge {
  readonly keyAuthorization: string;
  readonly name: string;
  /** ms since the epoch; readers ignore (and the next writer removes) one past it. */
  readonly expiresAt: number;
}

/** A name whose last order failed: shared so that every node waits the same backoff and shows the same failure. */
export interface StoredFailure {
  readonly failures: number;
  readonly error: string;
  /** ms since the epoch. */
  readonly failedAt: number;
  readonly retryAt: number;
  readonly node: string;
}

/** How long a certificate stays in Redis after it expired. */
export const EXPIRED_CERTIFICATE_KEPT_MS = 7 * 24 * 3600 * 1000;

/** Deletes the lock only while this node holds it; an expired lock taken by another node stays theirs. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

export class AcmeStore {
  readonly channel: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.channel = `${prefix}acme:changed`;
  }

  private key(suffix: string): string {
    return `${this.prefix}acme:${suffix}`;
  }

  async account(directory: string): Promise<StoredAccount | null> {
    return parse<StoredAccount>(await this.redis.hget(this.key('account'), directory));
  }

  /** Stores the account unless another node stored one first; returns the one stored. */
  async createAccount(directory: string, account: StoredAccount): Promise<StoredAccount> {
    await this.redis.hsetnx(this.key('account'), directory, JSON.stringify(account));
    return (await this.account(directory)) ?? account;
  }

  async saveAccount(directory: string, account: StoredAccount): Promise<void> {
    await this.redis.hset(this.key('account'), directory, JSON.stringify(account));
  }

  /** The stored certificates of these names (absent: none stored). */
  async certificates(names: readonly string[]): Promise<Map<string, StoredCertificate>> {
    const found = new Map<string, StoredCertificate>();
    if (names.length === 0) return found;
    const values = await this.redis.mget(names.map((name) => this.key(`cert:${name}`)));
    values.forEach((value, i) => {
      const cert = parse<StoredCertificate>(value);
      if (cert && typeof cert.certPem === 'string' && typeof cert.keyPem === 'string') found.set(names[i] as string, cert);
    });
    return found;
  }

  /**
   * A renewed certificate replaces its key long before the key expires; a
   * name that no node wants any more (its app gone or no longer labelled)
   * stops being renewed, and its key, private key included, leaves Redis a
   * week after the certificate expired (the dashboard shows it expired
   * meanwhile).
   */
  async saveCertificate(cert: StoredCertificate, now = Date.now()): Promise<void> {
    const keepMs = Date.parse(cert.notAfter) + EXPIRED_CERTIFICATE_KEPT_MS - now;
    const json = JSON.stringify(cert);
    if (Number.isFinite(keepMs)) await this.redis.set(this.key(`cert:${cert.name}`), json, 'PX', Math.max(1_000, Math.ceil(keepMs)));
    else await this.redis.set(this.key(`cert:${cert.name}`), json);
    await this.redis.hdel(this.key('status'), cert.name);
    await this.redis.publish(this.channel, `cert:${cert.name}`);
  }

  /** Takes the name's lock for `ms`; false when another node holds it. */
  async lock(name: string, node: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.key(`lock:${name}`), node, 'PX', ms, 'NX')) === 'OK';
  }

  /** Extends the lock while this node holds it; false when it lost it (expired, taken). */
  async renewLock(name: string, node: string, ms: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key(`lock:${name}`), node, String(ms))) === 1;
  }

  async unlock(name: string, node: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key(`lock:${name}`), node);
  }

  async lockHolder(name: string): Promise<string | null> {
    return this.redis.get(this.key(`lock:${name}`));
  }

  /** Live challenges, token → keyAuthorization; expired ones are removed. */
  async challenges(now: number): Promise<Map<string, string>> {
    const all = await this.redis.hgetall(this.key('challenges'));
    const live = new Map<string, string>();
    const expired: string[] = [];
    for (const [token, value] of Object.entries(all)) {
      const challenge = parse<StoredChallenge>(value);
      if (!challenge || typeof challenge.keyAuthorization !== 'string' || !(challenge.expiresAt > now)) expired.push(token);
      else live.set(token, challenge.keyAuthorization);
    }
    if (expired.length > 0) await this.redis.hdel(this.key('challenges'), ...expired);
    return live;
  }

  async addChallenge(token: string, challenge: StoredChallenge): Promise<void> {
    await this.redis.hset(this.key('challenges'), token, JSON.stringify(challenge));
    await this.redis.publish(this.channel, 'challenges');
  }

  async removeChallenge(token: string): Promise<void> {
    await this.redis.hdel(this.key('challenges'), token);
    await this.redis.publish(this.channel, 'challenges');
  }

  async failures(): Promise<Map<string, StoredFailure>> {
    const all = await this.redis.hgetall(this.key('status'));
    const found = new Map<string, StoredFailure>();
    for (const [name, value] of Object.entries(all)) {
      const failure = parse<StoredFailure>(value);
      if (failure && typeof failure.failures === 'number') found.set(name, failure);
    }
    return found;
  }

  async saveFailure(name: string, failure: StoredFailure): Promise<void> {
    await this.redis.hset(this.key('status'), name, JSON.stringify(failure));
    await this.redis.publish(this.channel, `status:${name}`);
  }
}

function parse<T>(value: string | null | undefined): T | null {
  if (!value) return null;
  try {
    const parsed = JSON.parse(value) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as T) : null;
  } catch {
    return null;
  }
}
