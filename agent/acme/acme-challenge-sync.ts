/**
 * The fleet's pending HTTP-01 challenges, from Redis (acme:challenges) to
 * this node's data plane: nginx's /edgeroute/acme-challenges, or HAProxy's
 * acme-challenges.map. The ordering node (AcmeManager) syncs through it, and
 * so does a node that does not order (an HAProxy node): whichever node the CA
 * reaches answers the token.
 *
 * Only well-formed challenges pass (RFC 8555 8.1 and 8.3: a base64url token;
 * a key authorization "token.thumbprint", both base64url): anything else in
 * Redis is refused and warned once, so that no data plane has to quote it
 * (HAProxy's map values and its log-format body take it as is).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RefreshLoop } from '../control/refresh-loop.js';
import { subscribeRedis } from '../fleet/redis-subscriber.js';
import { AcmeStore } from './acme-store.js';

export interface ChallengeTarget {
  /** "nginx", "HAProxy": for the log. */
  readonly label: string;
  /** Replaces the pending set: token → key authorization. */
  replace(challenges: ReadonlyMap<string, string>): Promise<void>;
}

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$/;

/** True when the token and its key authorization are base64url (and "token.thumbprint"), as every CA sends them. */
export function wellFormedChallenge(token: string, keyAuthorization: string): boolean {
  return TOKEN.test(token) && KEY_AUTHORIZATION.test(keyAuthorization) && keyAuthorization.startsWith(`${token}.`);
}

export class AcmeChallengeSync {
  /** Digest of the set last handed to the data plane. */
  private digest: string | null = null;
  private problem: string | null = null;
  /** Tokens refused as malformed, warned once each. */
  private readonly refused = new Set<string>();

  constructor(
    private readonly store: AcmeStore,
    private readonly target: ChallengeTarget,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reads the live challenges and hands them to the data plane; a data plane that refuses is warned once per problem and retried next time. */
  async sync(): Promise<void> {
    const read = await this.store.challenges(this.now());
    const challenges = new Map<string, string>();
    for (const [token, keyAuthorization] of read) {
      if (wellFormedChallenge(token, keyAuthorization)) {
        challenges.set(token, keyAuthorization);
        continue;
      }
      if (this.refused.has(token)) continue;
      this.refused.add(token);
      // Neither value is logged: a malformed entry is someone else's data.
      this.log.warn({ tokenLength: token.length }, 'ACME: a challenge in Redis is not a base64url token and key authorization; not served');
    }
    const digest = [...challenges.keys()].sort().join(',');
    // An empty set that the data plane already has needs no push; a pending
    // one is pushed again every time, for a data plane that restarted meanwhile.
    if (challenges.size === 0 && digest === this.digest) return;
    try {
      await this.target.replace(challenges);
      this.digest = digest;
      if (this.problem) this.log.info(`ACME: ${this.target.label} takes challenges again`);
      this.problem = null;
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.problem) this.log.warn({ err: problem }, `ACME: cannot push the challenges to ${this.target.label}; retrying`);
      this.problem = problem;
    }
  }
}

export interface ChallengeFollower {
  /** Syncs soon (Redis connected again, say). */
  poke(): void;
  stop(): Promise<void>;
}

/**
 * Keeps the data plane's challenges in step on a node that does not order:
 * at once on `acme:changed`, and every `intervalMs` (a notice lost while
 * Redis was away).
 */
export function followAcmeChallenges(
  deps: { readonly redis: Redis; readonly prefix: string; readonly target: ChallengeTarget; readonly intervalMs: number },
  log: Logger,
): ChallengeFollower {
  const store = new AcmeStore(deps.redis, deps.prefix);
  const sync = new AcmeChallengeSync(store, deps.target, log);
  let redisProblem: string | null = null;
  const loop = new RefreshLoop(
    async () => {
      // Redis's own link logs its outages; the next tick tries again.
      if (deps.redis.status !== 'ready') return;
      await sync.sync();
      redisProblem = null;
    },
    (err) => {
      if (err.message !== redisProblem) log.warn({ err: err.message }, 'ACME: cannot read the challenges from Redis; retrying');
      redisProblem = err.message;
    },
    deps.intervalMs,
  );
  const subscriber = subscribeRedis(deps.redis, [store.channel], (_channel, message) => {
    if (message === 'challenges') loop.poke(0);
  });
  loop.start();
  return {
    poke: () => loop.poke(0),
    async stop() {
      subscriber.disconnect();
      await loop.stop();
    },
  };
}
