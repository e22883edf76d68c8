/**
 * The agent's control loop. Events only ask for a sync; a sync fetches a fresh
 * snapshot, recomputes the whole table (pure), and pushes to nginx only the
 * apps whose routes changed. Requests are debounced and coalesced, failures
 * retried with backoff; nginx keeps its last table meanwhile.
 */
import type { Logger } from 'pino';
import { parseAppsResponse } from './core/marathon-apps.js';
import { isIpAddress, taskEndpoint } from './core/endpoint.js';
import { readRoutingLabels } from './core/labels.js';
import type { InputProblem, MarathonSnapshot } from './core/marathon-types.js';
import {
  computeRoutingTable,
  type AppRoute,
  type BackendStatus,
  type RoutingConfig,
  type RoutingTable,
} from './core/routing-table.js';
import type { HealthMemory } from './health-memory.js';
import { diffTables, isEmptyDiff } from './core/table-diff.js';
import type { PluginStatus, PushBody, PushResult } from './adapters/nginx-admin.js';
import { ProblemReporter } from './problem-reporter.js';

export interface ReconcilerDeps {
  fetchApps(): Promise<unknown>;
  resolveHosts(names: Iterable<string>): Promise<Map<string, string>>;
  push(body: PushBody): Promise<PushResult>;
  pluginStatus(): Promise<PluginStatus>;
  healthMemory: HealthMemory;
  now(): number;
}

export interface ReconcilerOptions {
  readonly routing: RoutingConfig;
  /** Wait this long after the first event of a burst before syncing. */
  readonly debounceMs: number;
  /** Full resync even without events, as a safety net. */
  readonly resyncIntervalMs: number;
  /** How often to check that nginx still holds the pushed table (it may have restarted). */
  readonly nginxCheckIntervalMs: number;
  readonly minRetryMs: number;
  readonly maxRetryMs: number;
}

export interface ReconcilerStats {
  syncRequests: number;
  syncs: number;
  syncFailures: number;
  pushes: number;
  fullPushes: number;
  lastSyncAt: number | null;
}

export class Reconciler {
  readonly stats: ReconcilerStats = { syncRequests: 0, syncs: 0, syncFailures: 0, pushes: 0, fullPushes: 0, lastSyncAt: null };
  private desired: RoutingTable | null = null;
  private statuses: readonly BackendStatus[] = [];
  /** The last good snapshot, for recomputes driven by the clock alone. */
  private snapshot: { apps: MarathonSnapshot; hostAddresses: Map<string, string> } | null = null;
  private needsFetch = true;
  private clockTimer: NodeJS.Timeout | null = null;
  /** What nginx holds, as far as we know; null when unknown. */
  private applied: RoutingTable | null = null;
  private syncing: Promise<void> | null = null;
  private dirty = false;
  private debounceTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private intervals: NodeJS.Timeout[] = [];
  private failures = 0;
  private stopped = false;
  private readonly problems: ProblemReporter;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly opts: ReconcilerOptions,
    private readonly log: Logger,
  ) {
    this.problems = new ProblemReporter(log);
  }

  start(): void {
    this.requestSync('start', 0);
    this.intervals.push(setInterval(() => this.requestSync('periodic resync'), this.opts.resyncIntervalMs));
    this.intervals.push(setInterval(() => void this.checkNginx(), this.opts.nginxCheckIntervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.intervals) clearInterval(timer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.clockTimer) clearTimeout(this.clockTimer);
    await this.syncing;
  }

  get table(): RoutingTable | null {
    return this.desired;
  }

  get pushedVersion(): string | null {
    return this.applied?.version ?? null;
  }

  /** Every task of every routed app, with its state and the reason for it. */
  get backendStatuses(): readonly BackendStatus[] {
    return this.statuses;
  }

  /**
   * Asks for a sync. Requests arriving while one is pending or running are
   * merged into it or the next. `refetch: false` only recomputes from the last
   * snapshot (the clock moved: a delay ended, a warm-up stepped).
   */
  requestSync(reason: string, delayMs = this.opts.debounceMs, refetch = true): void {
    if (this.stopped) return;
    this.stats.syncRequests++;
    if (refetch) this.needsFetch = true;
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    if (this.debounceTimer) return;
    this.log.debug({ reason }, 'sync requested');
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      this.syncing = this.runSync().finally(() => {
        this.syncing = null;
        if (this.dirty && !this.stopped) {
          this.dirty = false;
          // needsFetch still says whether those requests wanted a fresh snapshot.
          this.requestSync('requests during sync', this.opts.debounceMs, false);
        }
      });
    }, delayMs);
  }

  private async runSync(): Promise<void> {
    this.dirty = false;
    const started = Date.now();
    try {
      await this.syncOnce();
      this.failures = 0;
      this.stats.syncs++;
      this.stats.lastSyncAt = Date.now();
      this.log.debug({ ms: Date.now() - started, version: this.desired?.version }, 'synced');
    } catch (err) {
      this.failures++;
      this.stats.syncFailures++;
      const retryMs = Math.min(this.opts.maxRetryMs, this.opts.minRetryMs * 2 ** (this.failures - 1));
      this.log.warn({ err: (err as Error).message, retryMs, attempt: this.failures }, 'sync failed; nginx keeps its current table');
      this.scheduleRetry(retryMs);
    }
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.requestSync('retry', 0);
    }, ms);
  }

  private async syncOnce(): Promise<void> {
    if (this.needsFetch || this.snapshot === null) {
      // Cleared first: a request arriving during the fetch sets it again.
      this.needsFetch = false;
      try {
        const parsed = parseAppsResponse(await this.deps.fetchApps());
        const hostAddresses = await this.deps.resolveHosts(hostNamesToResolve(parsed.snapshot));
        this.snapshot = { apps: parsed.snapshot, hostAddresses };
        this.parseProblems = parsed.problems;
      } catch (err) {
        this.needsFetch = true;
        throw err;
      }
    }
    const { apps, hostAddresses } = this.snapshot;
    const memory = this.deps.healthMemory;
    const healthMemory = await memory.recall(tasksWithoutHealthResults(apps));
    const now = this.deps.now();
    const result = computeRoutingTable({ snapshot: apps, config: this.opts.routing, hostAddresses, healthMemory, now });
    this.problems.report([...this.parseProblems, ...result.problems]);
    this.desired = result.table;
    this.statuses = result.backends;
    this.scheduleClockRecompute(result.nextChangeAt, now);
    await this.pushDesired();
    await memory.remember(result.observations);
    memory.forgetExcept(new Set(apps.apps.flatMap((app) => app.tasks.map((task) => task.id))));
  }

  private parseProblems: readonly InputProblem[] = [];

  private scheduleClockRecompute(at: number | null, now: number): void {
    if (this.clockTimer) clearTimeout(this.clockTimer);
    this.clockTimer = null;
    if (at === null || this.stopped) return;
    this.clockTimer = setTimeout(() => {
      this.clockTimer = null;
      this.requestSync('clock', 0, false);
    }, Math.max(0, at - now));
  }

  private async pushDesired(): Promise<void> {
    const desired = this.desired;
    if (desired === null || this.applied?.version === desired.version) return;
    const applied = this.applied;
    const diff = diffTables(applied, desired);
    if (applied !== null && isEmptyDiff(diff)) {
      this.applied = desired;
      return;
    }
    const body: PushBody = applied === null ? fullPush(desired) : deltaPush(applied.version, desired.version, diff.upserts, diff.removals);
    const result = await this.deps.push(body);
    this.stats.pushes++;
    if (applied === null) this.stats.fullPushes++;
    if (!result.ok && result.status === 409 && applied !== null) {
      // nginx holds something else (restarted, or another writer): send everything.
      this.log.info({ error: result.error }, 'nginx table differs from the last push; pushing the full table');
      this.applied = null;
      return this.pushDesired();
    }
    if (!result.ok) throw new Error(`nginx refused the push (HTTP ${result.status}): ${result.error}`);
    this.applied = desired;
    this.log.info(
      { version: desired.version, changed: Object.keys(body.apps).length, full: body.base === null, apps: Object.keys(desired.apps).length },
      'pushed routing table to nginx',
    );
  }

  private async checkNginx(): Promise<void> {
    if (this.syncing || this.desired === null) return;
    try {
      const status = await this.deps.pluginStatus();
      if (this.applied === null && status.version === this.desired.version) {
        this.applied = this.desired;
        return;
      }
      if (status.version !== (this.applied?.version ?? null)) {
        this.log.warn({ nginxVersion: status.version, expected: this.applied?.version ?? null }, 'nginx does not hold the pushed table; resyncing');
        this.applied = null;
        this.requestSync('nginx table differs', 0);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'nginx admin endpoint unreachable');
      this.applied = null;
    }
  }
}

function fullPush(table: RoutingTable): PushBody {
  return { version: table.version, base: null, apps: table.apps };
}

function deltaPush(base: string, version: string, upserts: readonly AppRoute[], removals: readonly string[]): PushBody {
  const apps: Record<string, AppRoute | null> = {};
  for (const app of upserts) apps[app.id] = app;
  for (const id of removals) apps[id] = null;
  return { version, base, apps };
}

/** Running tasks of apps with health checks for which Marathon reports no result (e.g. after a leader failover). */
function tasksWithoutHealthResults(snapshot: MarathonSnapshot): string[] {
  const ids: string[] = [];
  for (const app of snapshot.apps) {
    if (app.healthCheckCount === 0) continue;
    for (const task of app.tasks) if (task.state === 'TASK_RUNNING' && task.healthCheckResults.length === 0) ids.push(task.id);
  }
  return ids;
}

/** Host names of running tasks of routed apps; IPs need no lookup. */
function hostNamesToResolve(snapshot: MarathonSnapshot): Set<string> {
  const names = new Set<string>();
  for (const app of snapshot.apps) {
    const labels = readRoutingLabels(app.labels);
    if (!labels.ok || !labels.routed) continue;
    for (const task of app.tasks) {
      if (task.state !== 'TASK_RUNNING') continue;
      const endpoint = taskEndpoint(app, task, labels.value.portIndex);
      if (endpoint.ok && !isIpAddress(endpoint.host)) names.add(endpoint.host);
    }
  }
  return names;
}
