/** Wires `--acme-directory` for the agent: the manager, the data plane's challenges, the metric and the names of the labelled apps. */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { acmeNames } from '../core/acme-plan.js';
import type { RoutingTable } from '../core/routing-table.js';
import type { CertWatcher } from '../certs/cert-watcher.js';
import type { ChallengeTarget } from './acme-challenge-sync.js';
import { ACME_DEFAULTS, AcmeManager, type AcmeNameView } from './acme-manager.js';
import { configureAcmeHttp } from './acme-order.js';

export interface AcmeAgentOptions {
  /** The ACME directory URL (Let's Encrypt's, or a private CA's). */
  readonly directory: string;
  /** The account's contact address. */
  readonly email: string;
  /** PEM file of the CA of the directory's HTTPS certificate, besides the system's (a private or test CA); null: none. */
  readonly caFile: string | null;
  readonly lockMs?: number;
  readonly checkIntervalMs?: number;
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
  readonly propagationMs?: number;
}

export interface RunningAcme {
  /** A sync ended: the labelled apps' names may have changed. */
  tableChanged(): void;
  views(): AcmeNameView[];
  stop(): Promise<void>;
}

/** Names are recomputed at most this often: a burst of syncs makes one walk of the table. */
const NAMES_DEBOUNCE_MS = 250;

export function startAcme(
  opts: AcmeAgentOptions,
  deps: {
    readonly redis: Redis;
    readonly prefix: string;
    readonly nodeId: string;
    readonly certs: CertWatcher;
    /** Where this node's data plane takes the pending challenges (nginx's endpoint, HAProxy's map). */
    readonly challenges: ChallengeTarget;
    readonly registry: Registry;
    readonly reconciler: { readonly table: RoutingTable | null; marathonApp(id: string): { readonly labels: Readonly<Record<string, string>> } | null };
  },
  log: Logger,
): RunningAcme {
  configureAcmeHttp(opts.caFile === null ? null : readFileSync(opts.caFile, 'utf8'));
  const failures = new Counter({
    name: 'edgeroute_acme_failures_total',
    help: 'ACME orders of each name that failed on this node (refused by the CA, a challenge not validated, the CA unreachable)',
    labelNames: ['name'],
    registers: [deps.registry],
  });
  const manager = new AcmeManager(
    {
      directory: opts.directory,
      email: opts.email,
      nodeId: deps.nodeId,
      lockMs: opts.lockMs ?? ACME_DEFAULTS.lockMs,
      checkIntervalMs: opts.checkIntervalMs ?? ACME_DEFAULTS.checkIntervalMs,
      retryFirstMs: opts.retryFirstMs ?? ACME_DEFAULTS.retryFirstMs,
      retryMaxMs: opts.retryMaxMs ?? ACME_DEFAULTS.retryMaxMs,
      propagationMs: opts.propagationMs ?? ACME_DEFAULTS.propagationMs,
      challengeTtlMs: ACME_DEFAULTS.challengeTtlMs,
    },
    {
      redis: deps.redis,
      prefix: deps.prefix,
      certs: deps.certs,
      challenges: deps.challenges,
      failed: (name) => failures.inc({ name }),
    },
    log,
  );
  manager.start();
  let pending: NodeJS.Timeout | null = null;
  return {
    tableChanged() {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        manager.setNames(acmeNames(deps.reconciler.table, (id) => deps.reconciler.marathonApp(id)?.labels ?? null));
      }, NAMES_DEBOUNCE_MS);
    },
    views: () => manager.views(),
    async stop() {
      if (pending) clearTimeout(pending);
      await manager.stop();
    },
  };
}
