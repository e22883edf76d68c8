/**
 * ACME for labelled apps, on every routing node alike (`--acme-directory`):
 *
 * - reads the fleet's certificates, challenges and failures from Redis (at
 *   once when `acme:changed` says so, and every `checkIntervalMs`), hands the
 *   certificates to the certificate watcher (which pushes them to nginx with
 *   the --certs folder's, the folder winning) and the pending challenges to
 *   nginx;
 * - orders, one name at a time, the names that have no certificate or one
 *   due for renewal (two thirds of its lifetime), under a per-name lock in
 *   Redis that expires, so that one node orders each name and a node that
 *   dies mid-order delays the others by at most `lockMs`;
 * - records a failure per name in Redis with the time of the next attempt
 *   (doubling from `retryFirstMs` up to `retryMaxMs`), so the whole fleet
 *   waits the backoff rather than each node in turn asking the CA again.
 *
 * Keys (the account's, the certificates') pass from Redis to nginx only:
 * never to a log, the state, the feed or the dashboard.
 */
import { X509Certificate } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { coveredBy, namesToOrder, renewalAt, retryDelayMs, type CertificateDates } from '../core/acme-plan.js';
import type { AcmeCertificate } from '../certs/cert-watcher.js';
import { RefreshLoop } from '../control/refresh-loop.js';
import { subscribeRedis, type RedisSubscription } from '../fleet/redis-subscriber.js';
import { AcmeChallengeSync, type ChallengeTarget } from './acme-challenge-sync.js';
import { newAccountKey, orderCertificate, orderProblem, type OrderRequest, type OrderResult } from './acme-order.js';
import { AcmeStore, type StoredCertificate, type StoredFailure } from './acme-store.js';

export interface AcmeSettings {
  readonly directory: string;
  readonly email: string;
  readonly nodeId: string;
  /** How long a name's lock lives without renewal (a dead node's lock frees after this). */
  readonly lockMs: number;
  readonly checkIntervalMs: number;
  readonly retryFirstMs: number;
  readonly retryMaxMs: number;
  /** After writing a challenge, how long the other nodes get to take it before the CA is told to validate. */
  readonly propagationMs: number;
  /** A challenge left in Redis (its node died) is ignored after this. */
  readonly challengeTtlMs: number;
}

export const ACME_DEFAULTS = {
  lockMs: 60_000,
  checkIntervalMs: 10_000,
  retryFirstMs: 60_000,
  retryMaxMs: 6 * 3_600_000,
  propagationMs: 1_000,
  challengeTtlMs: 600_000,
} as const;

export interface AcmeDeps {
  readonly redis: Redis;
  readonly prefix: string;
  /** The certificate watcher: serves what it is given, and says which names the --certs folder serves. */
  readonly certs: { setAcme(certs: readonly AcmeCertificate[]): void; manualNames(): ReadonlySet<string> };
  /** The data plane's pending challenges (nginx's endpoint). */
  readonly challenges: ChallengeTarget;
  /** Counts a failed order of a name (edgeroute_acme_failures_total). */
  readonly failed: (name: string) => void;
  /** acme-client by default; a test may replace it. */
  readonly order?: (request: OrderRequest) => Promise<OrderResult>;
  readonly now?: () => number;
}

/** What /v1/state and the dashboard show of one name: no key material. */
export interface AcmeNameView {
  readonly name: string;
  /** valid: a certificate not yet due; renewing: due, or being ordered; pending: none yet; failing: the last order failed; manual: a --certs certificate serves it. */
  readonly status: 'valid' | 'renewing' | 'pending' | 'failing' | 'manual';
  readonly notBefore: string | null;
  readonly notAfter: string | null;
  readonly renewAt: string | null;
  readonly issuedBy: string | null;
  /** The node ordering it now (its lock), as far as this node knows. */
  readonly ordering: boolean;
  readonly failures: number;
  readonly error: string | null;
  readonly failedAt: string | null;
  readonly retryAt: string | null;
  readonly failedOn: string | null;
}

/** How long stop() waits for an order in flight. */
const STOP_WAIT_MS = 3_000;

interface LoadedCert {
  readonly stored: StoredCertificate;
  readonly dates: CertificateDates;
  readonly issuer: string;
}

export class AcmeManager {
  private readonly store: AcmeStore;
  private readonly now: () => number;
  private names: readonly string[] = [];
  private certs = new Map<string, LoadedCert>();
  private failures = new Map<string, StoredFailure>();
  /** Digest of the certificates handed to the watcher. */
  private certsDigest = '';
  private readonly challengeSync: AcmeChallengeSync;
  /** The last problem logged per name, to log each change once. */
  private logged = new Map<string, string>();
  private ordering: string | null = null;
  /** This node's own backoff per name, in case the failure could not be written to Redis. */
  private localRetryAt = new Map<string, number>();
  private orderRunning: Promise<void> = Promise.resolve();
  private readonly refreshes: RefreshLoop;
  private subscriber: RedisSubscription | null = null;
  private redisProblem: string | null = null;

  constructor(
    private readonly settings: AcmeSettings,
    private readonly deps: AcmeDeps,
    private readonly log: Logger,
  ) {
    this.store = new AcmeStore(deps.redis, deps.prefix);
    this.now = deps.now ?? Date.now;
    this.challengeSync = new AcmeChallengeSync(this.store, deps.challenges, log, this.now);
    this.refreshes = new RefreshLoop(() => this.refresh(), (err) => this.reportRedis(err), settings.checkIntervalMs);
  }

  start(): void {
    this.subscriber = subscribeRedis(this.deps.redis, [this.store.channel], () => this.poke(20));
    this.refreshes.start();
    this.log.info({ directory: this.settings.directory }, 'ACME: ordering certificates for apps labelled edgeroute.acme=true');
  }

  async stop(): Promise<void> {
    this.subscriber?.disconnect();
    await this.refreshes.stop();
    // An order in flight may wait on the CA for long: its lock expires by itself if it is cut short.
    await Promise.race([this.orderRunning, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  /** The exact vhosts of the labelled apps (core/acme-plan acmeNames). */
  setNames(names: readonly string[]): void {
    if (names.length === this.names.length && names.every((name, i) => name === this.names[i])) return;
    this.names = names;
    this.poke(0);
  }

  /** Reads Redis and acts after `delayMs`, unless that is due sooner already. */
  poke(delayMs: number): void {
    this.refreshes.poke(delayMs);
  }

  views(): AcmeNameView[] {
    const manual = this.deps.certs.manualNames();
    const now = this.now();
    return this.names.map((name): AcmeNameView => {
      const cert = this.certs.get(name);
      const failure = this.failures.get(name) ?? null;
      const renewAt = cert ? renewalAt(cert.dates) : null;
      const status = coveredBy(name, manual) ? 'manual' : failure ? 'failing' : !cert ? 'pending' : (renewAt as number) <= now || this.ordering === name ? 'renewing' : 'valid';
      return {
        name,
        status,
        notBefore: cert ? new Date(cert.dates.notBefore).toISOString() : null,
        notAfter: cert ? new Date(cert.dates.notAfter).toISOString() : null,
        renewAt: renewAt === null ? null : new Date(renewAt).toISOString(),
        issuedBy: cert?.issuer ?? null,
        ordering: this.ordering === name,
        failures: failure?.failures ?? 0,
        error: failure?.error ?? null,
        failedAt: failure ? new Date(failure.failedAt).toISOString() : null,
        retryAt: failure ? new Date(failure.retryAt).toISOString() : null,
        failedOn: failure?.node ?? null,
      };
    });
  }

  private async refresh(): Promise<void> {
    // Redis's own link logs its outages; the next tick tries again.
    if (this.refreshes.isStopped || this.deps.redis.status !== 'ready') return;
    await this.pushChallenges();
    const [stored, failures] = await Promise.all([this.store.certificates(this.names), this.store.failures()]);
    this.failures = new Map([...failures].filter(([name]) => this.names.includes(name)));
    this.loadCertificates(stored);
    if (this.redisProblem) this.log.info('ACME: Redis answers again');
    this.redisProblem = null;
    if (this.ordering !== null) return;
    const retryAt = new Map(this.localRetryAt);
    for (const [name, failure] of this.failures) retryAt.set(name, Math.max(failure.retryAt, retryAt.get(name) ?? 0));
    const due = namesToOrder({
      names: this.names,
      stored: new Map([...this.certs].map(([name, cert]) => [name, cert.dates])),
      manual: this.deps.certs.manualNames(),
      retryAt,
      now: this.now(),
    });
    if (due.length === 0) return;
    this.ordering = due[0] as string;
    this.orderRunning = this.orderFirstFree(due)
      .then((ordered) => {
        // The next due name, without waiting for the interval (not when every one was another node's).
        if (ordered && due.length > 1) this.poke(0);
      })
      .catch((err: Error) => this.reportRedis(err))
      .finally(() => (this.ordering = null));
  }

  /** Orders the first of `due` whose lock no other node holds; false when all are held. */
  private async orderFirstFree(due: readonly string[]): Promise<boolean> {
    for (const name of due) {
      if (this.refreshes.isStopped) return false;
      this.ordering = name;
      if (await this.orderIfFree(name)) return true;
    }
    return false;
  }

  private loadCertificates(stored: ReadonlyMap<string, StoredCertificate>): void {
    const certs = new Map<string, LoadedCert>();
    for (const [name, cert] of stored) {
      const previous = this.certs.get(name);
      if (previous && previous.stored.certPem === cert.certPem && previous.stored.keyPem === cert.keyPem) {
        certs.set(name, previous);
        continue;
      }
      try {
        const leaf = new X509Certificate(cert.certPem);
        certs.set(name, { stored: cert, dates: datesOf(leaf), issuer: leaf.issuer.replace(/\n/g, ', ') });
      } catch {
        this.logOnce(name, 'unreadable', 'warn', `ACME: the certificate of ${name} in Redis is not readable; ordering a new one`);
      }
    }
    this.certs = certs;
    const digest = [...certs.values()].map((cert) => `${cert.stored.name}\u0000${cert.stored.issuedAt}\u0000${cert.stored.notAfter}`).join('\u0001');
    if (digest === this.certsDigest) return;
    this.certsDigest = digest;
    this.deps.certs.setAcme([...certs.values()].map((cert) => ({ name: cert.stored.name, certPem: cert.stored.certPem, keyPem: cert.stored.keyPem })));
  }

  /** This node's data plane gets the fleet's pending challenges (acme-challenge-sync.ts). */
  private pushChallenges(): Promise<void> {
    return this.challengeSync.sync();
  }

  /** Orders `name` unless another node holds its lock (false then). */
  private async orderIfFree(name: string): Promise<boolean> {
    const { nodeId, lockMs } = this.settings;
    if (!(await this.store.lock(name, nodeId, lockMs))) {
      this.log.debug({ name }, 'ACME: another node is ordering this name');
      return false;
    }
    let lost = false;
    const renew = setInterval(() => {
      this.store
        .renewLock(name, nodeId, lockMs)
        .then((held) => {
          if (!held && !lost) this.log.warn({ name }, `ACME: lost the lock of ${name} while ordering (Redis too slow, or the lock expired)`);
          lost ||= !held;
        })
        .catch(() => undefined);
    }, Math.max(100, Math.floor(lockMs / 3)));
    try {
      // Another node may have finished (or failed) just before this lock was free.
      const fresh = (await this.store.certificates([name])).get(name);
      const failure = (await this.store.failures()).get(name) ?? null;
      const dates = fresh ? readableDates(fresh.certPem) : null;
      const now = this.now();
      if ((dates && renewalAt(dates) > now) || (failure && failure.retryAt > now)) {
        this.poke(0);
        return true;
      }
      await this.order(name, failure);
      return true;
    } finally {
      clearInterval(renew);
      await this.store.unlock(name, nodeId).catch(() => undefined);
    }
  }

  private async order(name: string, previous: StoredFailure | null): Promise<void> {
    const { directory, email, nodeId } = this.settings;
    const renewing = this.certs.has(name);
    this.log.info({ name, renewing }, `ACME: ordering a certificate for ${name}`);
    const started = this.now();
    try {
      let account = await this.store.account(directory);
      if (!account) account = await this.store.createAccount(directory, { keyPem: await newAccountKey(), url: null });
      const result = await (this.deps.order ?? orderCertificate)({
        name,
        directory,
        email,
        accountKeyPem: account.keyPem,
        accountUrl: account.url,
        publishChallenge: async (token, keyAuthorization) => {
          await this.store.addChallenge(token, { keyAuthorization, name, expiresAt: this.now() + this.settings.challengeTtlMs });
          // This node's nginx at once; the others through acme:changed.
          await this.pushChallenges();
          await new Promise((resolve) => setTimeout(resolve, this.settings.propagationMs));
        },
        withdrawChallenge: async (token) => {
          await this.store.removeChallenge(token);
        },
      });
      if (result.accountUrl !== account.url) await this.store.saveAccount(directory, { keyPem: account.keyPem, url: result.accountUrl });
      const dates = datesOf(result.certPem);
      const cert: StoredCertificate = {
        name,
        certPem: result.certPem,
        keyPem: result.keyPem,
        notBefore: new Date(dates.notBefore).toISOString(),
        notAfter: new Date(dates.notAfter).toISOString(),
        issuedAt: new Date(this.now()).toISOString(),
        by: nodeId,
      };
      await this.store.saveCertificate(cert);
      this.localRetryAt.delete(name);
      this.logged.delete(name);
      this.log.info({ name, notAfter: cert.notAfter, ms: this.now() - started, renewal: renewing }, `ACME: certificate ${renewing ? 'renewed' : 'issued'} for ${name}`);
      this.poke(0);
    } catch (err) {
      const problem = orderProblem(err);
      const failures = (previous?.failures ?? 0) + 1;
      const now = this.now();
      const retryAt = now + retryDelayMs(failures, this.settings.retryFirstMs, this.settings.retryMaxMs);
      this.deps.failed(name);
      this.localRetryAt.set(name, retryAt);
      this.logOnce(name, problem, 'warn', `ACME: the order for ${name} failed: ${problem}`, { failures, retryAt: new Date(retryAt).toISOString() });
      await this.store.saveFailure(name, { failures, error: problem, failedAt: now, retryAt, node: nodeId });
      this.poke(0);
    }
  }

  private logOnce(name: string, problem: string, level: 'warn' | 'info', message: string, extra: Record<string, unknown> = {}): void {
    if (this.logged.get(name) === problem) {
      this.log.debug({ name, problem, ...extra }, message);
      return;
    }
    this.logged.set(name, problem);
    this.log[level]({ name, problem, ...extra }, message);
  }

  private reportRedis(err: Error): void {
    const problem = err.message;
    if (problem !== this.redisProblem) this.log.warn({ err: problem }, 'ACME: Redis did not answer; retrying');
    this.redisProblem = problem;
  }
}

/** The leaf's validity (the first certificate of a chain); throws when unreadable. */
function datesOf(cert: string | X509Certificate): CertificateDates {
  const leaf = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  return { notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
}

/** null when the PEM is not a readable certificate (then it is ordered again). */
function readableDates(certPem: string): CertificateDates | null {
  try {
    return datesOf(certPem);
  } catch {
    return null;
  }
}
