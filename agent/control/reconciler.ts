/**
 * The agent's control loop. Events only ask for a sync; a sync fetches a fresh
 * snapshot, recomputes the whole table (pure), and applies to the data plane
 * only the apps whose routes changed. Requests are debounced and coalesced,
 * failures retried with backoff; the data plane keeps its last table
 * meanwhile. It knows the data plane only through its port (`DataPlane`).
 */
import type { Logger } from 'pino';
import { parseAppResponse, type ParsedSnapshot } from '../core/marathon-apps.js';
import { isIpAddress } from '../core/endpoint.js';
import type { InputProblem, MarathonApp, MarathonSnapshot } from '../core/marathon-types.js';
import {
  computeRoutingTable,
  RoutingMemo,
  type AppRoute,
  type BackendStatus,
  type RoutingConfig,
  type RoutingTable,
} from '../core/routing-table.js';
import type { HealthMemory } from './health-memory.js';
import { diffTables, isEmptyDiff } from '../core/table-diff.js';
import type { DataPlane, TableChange } from '../dataplane/data-plane.js';
import { ProblemReporter } from './problem-reporter.js';
import { endShown, withTaskEnds, type TaskEnd } from '../core/task-ends.js';

/** Told what each sync did, for the feed and the metrics. */
export interface SyncObserver {
  synced(info: {
    timing: SyncTiming;
    table: RoutingTable;
    upserts: readonly AppRoute[];
    removals: readonly string[];
    /** The route each changed app had before (null: new). */
    replaced: ReadonlyMap<string, AppRoute | null>;
    pushed: boolean;
  }): void;
  failed(err: Error): void;
}

export interface ReconcilerDeps {
  /** `/v2/apps?embed=apps.tasks`, parsed; `answeredMs`: how long Marathon took to start answering. */
  fetchApps(): Promise<ParsedSnapshot & { readonly answeredMs?: number }>;
  /** One app with its tasks (`/v2/apps/{id}?embed=app.tasks`); null when Marathon has no such app. */
  fetchApp(appId: string): Promise<unknown | null>;
  resolveHosts(names: Iterable<string>): Promise<Map<string, string>>;
  dataPlane: DataPlane;
  healthMemory: HealthMemory;
  now(): number;
  observer?: SyncObserver;
}

export interface ReconcilerOptions {
  readonly routing: RoutingConfig;
  /** Wait this long after the first event of a burst before syncing. */
  readonly debounceMs: number;
  /** Full resync even without events, as a safety net. */
  readonly resyncIntervalMs: number;
  /** How often to check that the data plane still holds the pushed table (it may have restarted). */
  readonly dataPlaneCheckIntervalMs: number;
  readonly minRetryMs: number;
  readonly maxRetryMs: number;
}

/** How the last sync went, for logs and benchmarks. */
export interface SyncTiming {
  full: boolean;
  appsFetched: number;
  /** From the first request this sync serves (an event arriving, say) to its start: the debounce, a sync under way. */
  waitedMs: number;
  /** A full read's wait for Marathon's first byte (part of fetchMs). */
  answeredMs?: number;
  /** The agent's CPU time (user and system) during the sync: its own work, whatever else the machine runs. */
  cpuMs: number;
  fetchMs: number;
  computeMs: number;
  pushMs: number;
  pushBytes: number;
  totalMs: number;
}

export interface ReconcilerStats {
  syncRequests: number;
  syncs: number;
  lastSync: SyncTiming | null;
  syncFailures: number;
  pushes: number;
  fullPushes: number;
  lastSyncAt: number | null;
  /** When the data plane last took a change (ms). */
  lastPushAt: number | null;
}

export class Reconciler {
  readonly stats: ReconcilerStats = { syncRequests: 0, syncs: 0, lastSync: null, syncFailures: 0, pushes: 0, fullPushes: 0, lastSyncAt: null, lastPushAt: null };
  private desired: RoutingTable | null = null;
  /** The current snapshot, app by app; unchanged apps keep their objects, so the memo can reuse their results. */
  private apps: Map<string, MarathonApp> | null = null;
  private parseProblems = new Map<string, readonly InputProblem[]>();
  /** Replaced, not changed in place, when an address changes: the memo knows by the object that none did. */
  private hostAddresses: ReadonlyMap<string, string> = new Map();
  /** The snapshot of the last computation, and the apps read since (null: gone); null after a full read. */
  private lastSnapshot: MarathonSnapshot | null = null;
  private appsChanged: Map<string, MarathonApp | null> | null = null;
  private readonly memo = new RoutingMemo();
  private needsFetch = true;
  /** Apps to re-read on the next sync, when a full read is not due anyway. */
  private readonly pendingApps = new Set<string>();
  private timing: SyncTiming | null = null;
  private lastSyncEndedAt = 0;
  /** The data plane's generation last seen; a new one means it restarted. */
  private generation: string | null = null;
  /** Why the data plane's admin endpoint did not answer the last check; null when it did. */
  private unreachable: string | null = null;
  private clockTimer: NodeJS.Timeout | null = null;
  /** What the data plane holds, as far as we know; null when unknown. */
  private applied: RoutingTable | null = null;
  private syncing: Promise<void> | null = null;
  private dirty = false;
  /** The sync due: a timer, or an immediate when it is due at once. */
  private debounceTimer: { cancel(): void } | null = null;
  /** When the debounce timer fires (Date.now()). */
  private debounceDue = 0;
  /** When the oldest request not yet served by a sync arrived (performance.now()). */
  private requestedAt: number | null = null;
  /** Task ends reported by events, by task id: applied to their apps until a read of the app shows them. */
  private readonly taskEnds = new Map<string, TaskEnd>();
  /** A task end arrived since the last sync: the next one starts at once and pushes before reading anything. */
  private endsWaiting = false;
  /** The last sync pushed task ends before the reads that were due: the next sync, which reads them, starts at once. */
  private readsPutOff = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private intervals: NodeJS.Timeout[] = [];
  private failures = 0;
  private stopped = false;
  private started = false;
  private readonly reporter: ProblemReporter;
  /** Tasks announced to be killed, with why; they leave every upstream. */
  private drains: ReadonlyMap<string, string> = new Map();
  /** The drain marks each computed table was made with. */
  private readonly tableDrains = new WeakMap<RoutingTable, ReadonlyMap<string, string>>();

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly opts: ReconcilerOptions,
    private readonly log: Logger,
  ) {
    this.reporter = new ProblemReporter(log);
  }

  start(): void {
    this.started = true;
    this.requestSync('start', 0);
    this.intervals.push(setInterval(() => this.requestSync('periodic resync'), this.opts.resyncIntervalMs));
    this.intervals.push(setInterval(() => void this.checkDataPlane(), this.opts.dataPlaneCheckIntervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.intervals) clearInterval(timer);
    this.debounceTimer?.cancel();
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

  /** Why the data plane's admin endpoint (nginx's admin listener, HAProxy's runtime socket) did not answer the last check; null when it did. */
  get dataPlaneUnreachable(): string | null {
    return this.unreachable;
  }

  /** The Marathon app (its labels) as last read, by id; null when unknown. */
  marathonApp(id: string): MarathonApp | null {
    return this.apps?.get(id) ?? null;
  }

  /** Apps not routed as labelled, and why. */
  get problems(): readonly InputProblem[] {
    return this.reporter.current();
  }

  /** The last computation's tasks of one logical app, with states and reasons. */
  statusesOf(appId: string): readonly BackendStatus[] {
    return this.result?.statusesOf(appId) ?? [];
  }

  /** Every task of every routed app, with its state and the reason for it. */
  get backendStatuses(): readonly BackendStatus[] {
    return this.result?.backends ?? [];
  }

  /**
   * Asks for a sync. The first request after a quiet spell syncs at once;
   * later ones wait until `debounceMs` after the previous sync ended, and all
   * requests arriving meanwhile are merged into that one sync. `refetch:
   * false` only recomputes from the last snapshot (the clock moved: a delay
   * ended, a warm-up stepped).
   */
  requestSync(reason: string, delayMs?: number, refetch = true): void {
    if (this.stopped) return;
    this.stats.syncRequests++;
    this.requestedAt ??= performance.now();
    if (refetch) this.needsFetch = true;
    // Before start() a request is only noted: the first sync serves it.
    if (!this.started) return;
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    const wait = delayMs ?? Math.max(0, this.lastSyncEndedAt + this.opts.debounceMs - Date.now());
    if (this.debounceTimer) {
      // A task end does not wait out the debounce; other requests join the sync already due.
      if (!this.endsWaiting || Date.now() + wait >= this.debounceDue) return;
      this.debounceTimer.cancel();
    }
    this.log.debug({ reason }, 'sync requested');
    this.debounceDue = Date.now() + wait;
    this.debounceTimer = later(wait, () => {
      this.debounceTimer = null;
      this.syncing = this.runSync().finally(() => {
        this.syncing = null;
        this.lastSyncEndedAt = Date.now();
        if (this.dirty && !this.stopped) {
          this.dirty = false;
          // needsFetch still says whether those requests wanted a fresh snapshot.
          // Reads a sync for task ends put off (and new task ends) go at once; other requests wait out the debounce.
          const now = this.endsWaiting || this.readsPutOff;
          this.readsPutOff = false;
          this.requestSync('requests during sync', now ? 0 : undefined, false);
        }
      });
    });
  }

  /** New drain marks (task id → why); the tasks are judged draining from the next sync on. */
  /** The drain marks; before start() they only wait for the first sync, which they must shape. */
  setDrains(drains: ReadonlyMap<string, string>): void {
    this.drains = drains;
    if (this.started) this.requestSync('drain marks changed', 0, false);
  }

  /** The drain marks the table the data plane holds was computed with; null when its table is not known. */
  get drainsApplied(): ReadonlyMap<string, string> | null {
    return this.applied === null ? null : (this.tableDrains.get(this.applied) ?? null);
  }

  /**
   * Marathon is killing a task, or it ended (an event said so): it leaves its
   * upstream in a sync that starts at once (after the one under way, without
   * the debounce) and pushes before reading anything; its app is re-read in
   * the sync after, which confirms it.
   */
  taskEnded(end: TaskEnd, reason: string): void {
    if (this.stopped) return;
    this.taskEnds.set(end.taskId, end);
    this.pendingApps.add(end.appId);
    this.endsWaiting = true;
    this.requestSync(reason, 0, false);
  }

  /** Asks for a sync that re-reads only these apps (unless a full read is due anyway). */
  requestAppSync(appIds: readonly string[], reason: string): void {
    for (const id of appIds) this.pendingApps.add(id);
    this.requestSync(reason, undefined, false);
  }

  private async runSync(): Promise<void> {
    this.dirty = false;
    const started = Date.now();
    try {
      await this.syncOnce();
      this.failures = 0;
      this.stats.syncs++;
      this.stats.lastSyncAt = Date.now();
      this.stats.lastSync = this.timing;
      if (this.timing && this.lastChanges && this.desired) {
        if (this.applied === this.desired) this.deps.dataPlane.holds(this.desired);
        this.deps.observer?.synced({
          timing: this.timing,
          table: this.desired,
          upserts: this.lastChanges.upserts,
          removals: this.lastChanges.removals,
          replaced: this.lastChanges.replaced,
          pushed: this.applied === this.desired,
        });
      }
      this.log.debug({ ...this.timing, version: this.desired?.version }, 'synced');
    } catch (err) {
      this.failures++;
      this.stats.syncFailures++;
      const retryMs = Math.min(this.opts.maxRetryMs, this.opts.minRetryMs * 2 ** (this.failures - 1));
      this.log.warn({ err: (err as Error).message, retryMs, attempt: this.failures }, `sync failed; ${this.deps.dataPlane.name} keeps its current table`);
      this.deps.observer?.failed(err as Error);
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
    const started = performance.now();
    const cpuAtStart = process.cpuUsage();
    const requested = Math.min(this.requestedAt ?? started, started);
    this.requestedAt = null;
    // Task ends from events go out first; the reads due meanwhile wait for the next sync.
    const endsFirst = this.endsWaiting && this.apps !== null;
    this.endsWaiting = false;
    const full = !endsFirst && (this.needsFetch || this.apps === null);
    const changed = endsFirst ? [] : full ? await this.readAllApps() : await this.readPendingApps();
    this.applyTaskEnds(full ? null : new Set(changed.map((app) => app.id).concat(this.appsGone)));
    this.appsGone = [];
    const fetched = performance.now();

    // What the memory held before this sync: when nothing, all it holds after are tasks of this snapshot.
    const rememberedBefore = this.deps.healthMemory.size;
    const names = hostNamesToResolve(changed);
    if (names.size > 0) this.hostAddresses = withAddresses(this.hostAddresses, await this.deps.resolveHosts(names));
    const memory = this.deps.healthMemory;
    // Awaiting only when Redis must be asked: an await lets a burst of events in mid-sync.
    const unknownHealth = tasksWithoutHealthResults(changed);
    const healthMemory = unknownHealth.length > 0 ? await memory.recall(unknownHealth) : memory.view();
    const now = this.deps.now();
    const snapshot = snapshotOf(this.apps as Map<string, MarathonApp>);
    const drains = this.drains;
    const changes = this.lastSnapshot !== null && this.appsChanged !== null ? { since: this.lastSnapshot, apps: this.appsChanged } : undefined;
    const result = computeRoutingTable(
      { snapshot, config: this.opts.routing, hostAddresses: this.hostAddresses, healthMemory, now, drains, ...(changes ? { changes } : {}) },
      this.memo,
    );
    this.lastSnapshot = snapshot;
    this.appsChanged = new Map();
    this.tableDrains.set(result.table, drains);
    this.reporter.report([...[...this.parseProblems.values()].flat(), ...result.problems]);
    this.desired = result.table;
    this.result = result;
    this.lastChanges = { table: result.table, ...result.changes };
    this.scheduleClockRecompute(result.nextChangeAt, now);
    const computed = performance.now();

    const pushBytes = await this.pushDesired();
    const pushed = performance.now();
    // Not waited for: nginx routes by the table already, and the store's write of 100,000 tasks (a first
    // sync) takes seconds. A later sync's write waits for this one's.
    memory.remember(result.observations).catch((err: Error) => this.log.error({ err: err.message }, 'remembering health failed'));
    if (full && rememberedBefore > 0) memory.forgetExcept(() => taskIdsOf(snapshot));
    if (endsFirst && (this.pendingApps.size > 0 || this.needsFetch)) {
      this.dirty = true;
      this.readsPutOff = true;
    }
    this.timing = {
      full,
      appsFetched: full ? snapshot.apps.length : changed.length,
      waitedMs: round(started - requested),
      cpuMs: cpuMsSince(cpuAtStart),
      ...(full && this.answeredMs !== null ? { answeredMs: round(this.answeredMs) } : {}),
      fetchMs: round(fetched - started),
      computeMs: round(computed - fetched),
      pushMs: round(pushed - computed),
      pushBytes,
      totalMs: round(performance.now() - started),
    };
  }

  /** `GET /v2/apps?embed=apps.tasks`; returns every app. */
  private async readAllApps(): Promise<MarathonApp[]> {
    // Cleared first: a request arriving during the fetch sets it again.
    this.needsFetch = false;
    this.pendingApps.clear();
    try {
      const parsed = await this.deps.fetchApps();
      this.answeredMs = parsed.answeredMs ?? null;
      this.apps = new Map(parsed.snapshot.apps.map((app) => [app.id, app]));
      this.appsChanged = null;
      this.parseProblems = new Map([['', parsed.problems]]);
      return parsed.snapshot.apps as MarathonApp[];
    } catch (err) {
      this.needsFetch = true;
      throw err;
    }
  }

  /** `GET /v2/apps/{id}?embed=app.tasks` for each app an event named; returns the apps read. */
  private async readPendingApps(): Promise<MarathonApp[]> {
    const ids = [...this.pendingApps];
    this.pendingApps.clear();
    let bodies: Array<unknown | null>;
    try {
      bodies = await Promise.all(ids.map((id) => this.deps.fetchApp(id)));
    } catch (err) {
      for (const id of ids) this.pendingApps.add(id);
      throw err;
    }
    const apps = this.apps as Map<string, MarathonApp>;
    const read: MarathonApp[] = [];
    ids.forEach((id, i) => {
      const body = bodies[i];
      if (body === null) {
        apps.delete(id);
        this.appsGone.push(id);
        this.appsChanged?.set(id, null);
        this.parseProblems.delete(id);
        return;
      }
      const parsed = parseAppResponse(body);
      // Kept only when there are some: 10,000 empty entries would be read on every sync.
      if (parsed.problems.length > 0) this.parseProblems.set(id, parsed.problems);
      else this.parseProblems.delete(id);
      for (const app of parsed.snapshot.apps) {
        apps.set(app.id, app);
        this.appsChanged?.set(app.id, app);
        read.push(app);
      }
    });
    return read;
  }

  /** How long Marathon took to start answering the last full read. */
  private answeredMs: number | null = null;

  /** Apps a read found gone (their tasks' ends are shown). */
  private appsGone: string[] = [];

  /**
   * Applies the task ends to the apps held. An end is forgotten once a read
   * of its app (`read`: the app ids read now; null: every app) shows it, or
   * no longer lists the task; until then it is applied to every read, which
   * may have been answered before the event.
   */
  private applyTaskEnds(read: ReadonlySet<string> | null): void {
    if (this.taskEnds.size === 0) return;
    const apps = this.apps as Map<string, MarathonApp>;
    for (const [taskId, end] of this.taskEnds) {
      const app = apps.get(end.appId);
      if ((read === null || read.has(end.appId)) && endShown(app, end)) {
        this.taskEnds.delete(taskId);
        continue;
      }
      if (app === undefined) continue;
      const ended = withTaskEnds(app, [end]);
      if (ended === app) continue;
      apps.set(end.appId, ended);
      this.appsChanged?.set(end.appId, ended);
    }
  }

  private result: { readonly backends: readonly BackendStatus[]; statusesOf(appId: string): readonly BackendStatus[] } | null = null;
  /** The last computation's own account of what changed, to skip diffing 10,000 apps. */
  private lastChanges:
    | { table: RoutingTable; since: RoutingTable | null; upserts: readonly AppRoute[]; removals: readonly string[]; replaced: ReadonlyMap<string, AppRoute | null> }
    | null = null;

  private scheduleClockRecompute(at: number | null, now: number): void {
    if (this.clockTimer) clearTimeout(this.clockTimer);
    this.clockTimer = null;
    if (at === null || this.stopped) return;
    this.clockTimer = setTimeout(() => {
      this.clockTimer = null;
      this.requestSync('clock', 0, false);
    }, Math.max(0, at - now));
  }

  /** Returns the size of the push body, 0 when nothing had to be pushed. */
  private async pushDesired(): Promise<number> {
    const desired = this.desired;
    if (desired === null) return 0;
    if (this.applied?.version === desired.version) {
      // Same content; holding the newest object keeps drainsApplied current.
      this.applied = desired;
      return 0;
    }
    const applied = this.applied;
    const known = this.lastChanges;
    const diff = known !== null && applied !== null && known.table === desired && known.since === applied ? known : diffTables(applied, desired);
    if (applied !== null && isEmptyDiff(diff)) {
      this.applied = desired;
      return 0;
    }
    const plane = this.deps.dataPlane;
    const change: TableChange = applied === null ? wholeTable(desired) : changesSince(applied.version, desired.version, diff.upserts, diff.removals);
    const result = await plane.apply(change);
    const bytes = result.bytes;
    this.stats.pushes++;
    if (applied === null) this.stats.fullPushes++;
    if (!result.ok && result.otherBase && applied !== null) {
      // The data plane holds something else (restarted, or another writer): send everything.
      this.log.info({ error: result.error }, `${plane.name} table differs from the last push; pushing the full table`);
      this.applied = null;
      return bytes + (await this.pushDesired());
    }
    if (!result.ok) throw new Error(result.message);
    if (result.generation) this.generation = result.generation;
    this.applied = desired;
    this.stats.lastPushAt = Date.now();
    this.log.info(
      // Counting the whole table would build it; the delta says what changed.
      { version: desired.version, changed: Object.keys(change.apps).length, full: change.base === null, at: round(performance.timeOrigin + performance.now()) },
      `pushed routing table to ${plane.name}`,
    );
    return bytes;
  }

  private async checkDataPlane(): Promise<void> {
    if (this.syncing || this.desired === null) return;
    const plane = this.deps.dataPlane;
    try {
      const status = await plane.status();
      if (this.unreachable !== null) this.log.info({ after: this.unreachable }, `${plane.name} admin endpoint reachable again`);
      this.unreachable = null;
      const restarted = this.generation !== null && status.generation !== null && status.generation !== this.generation;
      this.generation = status.generation ?? this.generation;
      if (restarted) {
        // It may hold an older snapshot, or nothing: send everything.
        this.log.info({ generation: status.generation }, `${plane.name} restarted; pushing the full table`);
        this.applied = null;
        this.requestSync(`${plane.name} restarted`, 0, false);
        return;
      }
      if (this.applied === null && status.version === this.desired.version) {
        this.applied = this.desired;
        return;
      }
      if (status.version !== (this.applied?.version ?? null)) {
        this.log.warn({ [`${plane.name}Version`]: status.version, expected: this.applied?.version ?? null }, `${plane.name} does not hold the pushed table; resyncing`);
        this.applied = null;
        this.requestSync(`${plane.name} table differs`, 0);
      }
    } catch (err) {
      const message = (err as Error).message;
      // One error per cause, then quieter while it lasts: routing goes on with what the data plane holds.
      if (this.unreachable !== message) this.log.error({ err: message }, `${plane.name} admin endpoint unreachable: ${message}; routing changes wait until it answers`);
      else this.log.debug({ err: message }, `${plane.name} admin endpoint unreachable`);
      this.unreachable = message;
      this.applied = null;
    }
  }
}

function wholeTable(table: RoutingTable): TableChange {
  return { version: table.version, base: null, apps: table.apps };
}

function changesSince(base: string, version: string, upserts: readonly AppRoute[], removals: readonly string[]): TableChange {
  const apps: Record<string, AppRoute | null> = {};
  for (const app of upserts) apps[app.id] = app;
  for (const id of removals) apps[id] = null;
  return { version, base, apps };
}

/**
 * The snapshot as the routing memo reads it, during the computation: the list
 * of apps is built only if read (a computation told which apps changed does
 * not read it).
 */
function snapshotOf(apps: ReadonlyMap<string, MarathonApp>): MarathonSnapshot {
  let list: MarathonApp[] | null = null;
  return {
    get apps() {
      list ??= [...apps.values()];
      return list;
    },
  };
}

/** The addresses with these added; the same map when none is new or different. */
function withAddresses(known: ReadonlyMap<string, string>, resolved: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  let next: Map<string, string> | null = null;
  for (const [name, address] of resolved) {
    if (known.get(name) === address) continue;
    next ??= new Map(known);
    next.set(name, address);
  }
  return next ?? known;
}

/**
 * Runs `fn` after `ms`; at once (after the I/O already arrived, not the
 * 1 ms a zero timer waits) when `ms` is 0: a quiet spell's first event and a
 * task end are pushed that much sooner.
 */
function later(ms: number, fn: () => void): { cancel(): void } {
  if (ms <= 0) {
    const immediate = setImmediate(fn);
    return { cancel: () => clearImmediate(immediate) };
  }
  const timer = setTimeout(fn, ms);
  return { cancel: () => clearTimeout(timer) };
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return round((used.user + used.system) / 1000);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Running tasks of apps with health checks for which Marathon reports no result (e.g. after a leader failover). */
function tasksWithoutHealthResults(apps: readonly MarathonApp[]): string[] {
  const ids: string[] = [];
  for (const app of apps) {
    if (app.healthCheckCount === 0) continue;
    for (const task of app.tasks) if (task.state === 'TASK_RUNNING' && task.healthCheckResults.length === 0) ids.push(task.id);
  }
  return ids;
}

/**
 * Host names of running tasks, of every app: which apps are routed, and at
 * which port index, is the routing's to say, whatever labels it reads (it
 * used to read edgeroute.* labels here again, 10,000 apps' worth on a full
 * read, and so missed apps routed by their marathon-lb labels). A cluster
 * has few agents, so few names; IPs need no lookup.
 */
function hostNamesToResolve(apps: readonly MarathonApp[]): Set<string> {
  const names = new Set<string>();
  const addresses = new Set<string>();
  const consider = (host: string | undefined) => {
    if (host === undefined || host === '' || names.has(host) || addresses.has(host)) return;
    if (isIpAddress(host)) addresses.add(host);
    else names.add(host);
  };
  for (const app of apps) {
    for (const task of app.tasks) {
      if (task.state !== 'TASK_RUNNING') continue;
      consider(task.host);
      // Container networking reaches the task at its own address.
      if (app.networkMode === 'container') consider(task.ipAddresses[0]);
    }
  }
  return names;
}

/** Every task id of the snapshot (100,000 at scale: no array per app on the way). */
function taskIdsOf(snapshot: MarathonSnapshot): Set<string> {
  const ids = new Set<string>();
  for (const app of snapshot.apps) for (const task of app.tasks) ids.add(task.id);
  return ids;
}
