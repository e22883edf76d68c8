import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { sendMessage } from './http-replies.js';
import { NO_LEADER_MESSAGE, proxyToLeader, redirectEventsToLeader } from './leader-proxy.js';
import { createApiHandler, type DeploymentTicket, type MarathonBackend } from './marathon-api.js';
import {
  apiPostEvent,
  appTerminatedEvent,
  deploymentFailedEvent,
  deploymentInfoEvent,
  deploymentStepFailureEvent,
  deploymentStepSuccessEvent,
  deploymentSuccessEvent,
  eventStreamAttached,
  eventStreamDetached,
  failedHealthCheckEvent,
  groupChangeSuccessEvent,
  healthStatusChangedEvent,
  instanceChangedEvent,
  instanceHealthChangedEvent,
  statusUpdateEvent,
  type DeploymentAction,
  type DeploymentPlan,
  type MarathonEvent,
} from './marathon-events.js';
import { MarathonInstance, type InstanceRequestHandler, type SimTlsOptions } from './marathon-instance.js';
import { renderAppDefinition, renderAppJson, renderInfo } from './marathon-json.js';
import {
  activeTasks,
  invalidateRendering,
  isoNow,
  morePortsOf,
  normalizeAppId,
  normalizeSpec,
  taskIdPrefix,
  toSimTask,
  type AppRecord,
  type HealthRecord,
  type NormalizedAppSpec,
  type SimAppSpec,
  type SimTask,
  type TaskRecord,
} from './sim-model.js';
import { startTaskServer, type TaskRequestStats, type TaskServer } from './task-server.js';

export type { SimAppSpec, SimTask } from './sim-model.js';
export type { TaskRequestStats } from './task-server.js';
export type { MarathonEvent } from './marathon-events.js';
export type { SimTlsOptions } from './marathon-instance.js';

export interface MarathonSimOptions {
  /** Period of the bare `\r\n` SSE heartbeat; Marathon (Jetty) uses 10 s. */
  heartbeatMs?: number;
  /** Address the API and every task server listen on, and the `host` tasks report. */
  host?: string;
  /** Marathon instances (each on its own port) sharing one state, as an HA cluster; default 1. Instance 0 leads first. */
  instances?: number;
  /** PEM key and certificate: every instance serves HTTPS (task servers stay plain HTTP). */
  tls?: SimTlsOptions;
}

/** Options of a rolling restart. */
export interface RestartOptions {
  /** Tasks replaced per step (default 1). */
  batch?: number;
}

/** Options of killTask(). */
export interface KillTaskOptions {
  /** Launch a replacement and keep the instance count (Marathon's default); default false: scale down by one. */
  replace?: boolean;
  /**
   * Default true: resolve once the task is TASK_KILLED. false: resolve as soon as the kill has started
   * (TASK_KILLING already published when the app has a grace period); the kill goes on in the background.
   */
  wait?: boolean;
}

/** Called synchronously for every event the sim publishes; `publishedAt` is Date.now() at publication. */
export type SimEventListener = (event: MarathonEvent, publishedAt: number) => void;

/** Paths a standby answers itself; it proxies everything else to the leader. */
const STANDBY_LOCAL_PATHS = new Set(['/ping', '/v2/leader', '/v2/info']);

interface PendingKill {
  readonly done: Promise<void>;
  /** Ends the grace period now (used by stop()). */
  readonly endGrace: () => void;
}

const FAILED_CHECK_CAUSE = 'ConnectException: Connection refused';

/**
 * An in-process Marathon 1.10 for tests and the demo: the `/v2` REST API, the `/v2/events`
 * SSE stream in Jetty's framing, and one real HTTP server per task (or none: a virtual task of an app
 * with `backendPorts` points at a backend the caller runs). loadBulk() creates thousands of running apps
 * at once; onEvent() and taskStats() let benchmarks timestamp events and the requests tasks receive.
 *
 * With `instances > 1` it is an HA cluster over one shared state: the leader serves the API and
 * the event streams; a standby answers `/ping`, `/v2/leader` and `/v2/info` itself, redirects
 * `/v2/events` to the leader (302, Marathon ≥ 1.7) and proxies every other request to it.
 * The leader adds `X-Marathon-Leader: <its URL>` to its answers; proxied answers carry `X-Marathon-Via`.
 * Nobody elects a new leader by itself: when the leader instance is down there is no leader until
 * the test calls electLeader().
 *
 * Unlike Marathon, changing an app's labels or health checks with deploy() keeps its running
 * tasks; call restartApp() to roll them.
 */
export class MarathonSim {
  /** URL of instance 0 (the initial leader), "http(s)://127.0.0.1:PORT". */
  readonly url: string;
  /** One URL per Marathon instance, same host, each its own port. */
  readonly urls: string[];
  private readonly apps = new Map<string, AppRecord>();
  /**
   * App ids by task-id prefix ("/a/b" → "a_b"), so finding a task by id does not scan the apps.
   * Several ids can share a prefix ("/a/b" and "/a_b"); an id stays until its app is forgotten.
   */
  private readonly appIdsByTaskPrefix = new Map<string, Set<string>>();
  /** Request counters of real task servers, by task id; kept after the task is gone. */
  private readonly requestStats = new Map<string, TaskRequestStats>();
  private readonly eventListeners = new Set<SimEventListener>();
  private readonly plans = new Map<string, DeploymentPlan>();
  private readonly pendingKills = new Map<string, PendingKill>();
  /** Tasks waiting for their first health result (firstHealthyAfterMs). */
  private readonly firstChecks = new Map<string, NodeJS.Timeout>();
  /** Re-evaluated after every task state or health change (rolling restarts wait on them). */
  private readonly changeListeners = new Set<() => void>();
  private readonly apiHandlers: Array<(req: IncomingMessage, res: ServerResponse) => void>;
  private readonly slaveId = `${randomUUID()}-S0`;
  private readonly frameworkId = `${randomUUID()}-0000`;
  private leader = 0;
  private nextServicePort = 10000;
  private published = 0;
  private rawApps: string | null = null;
  private onRawAppsServed: (() => void) | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly instances: MarathonInstance[],
    private readonly host: string,
  ) {
    this.urls = instances.map((instance) => instance.url);
    this.url = this.urls[0]!;
    this.apiHandlers = instances.map((instance) => createApiHandler(this.backend(instance)));
  }

  /** Starts the simulator: `instances` (default 1) Marathon fronts on free ports of `host` (default 127.0.0.1). */
  static async start(opts: MarathonSimOptions = {}): Promise<MarathonSim> {
    const host = opts.host ?? '127.0.0.1';
    const count = opts.instances ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error(`instances must be a positive integer, got ${count}`);
    let route: InstanceRequestHandler = (_instance, req, res) => {
      req.resume();
      sendMessage(res, 503, NO_LEADER_MESSAGE);
    };
    const instances: MarathonInstance[] = [];
    try {
      for (let index = 0; index < count; index += 1) {
        instances.push(
          await MarathonInstance.start({
            index,
            host,
            heartbeatMs: opts.heartbeatMs ?? 10_000,
            tls: opts.tls,
            onRequest: (instance, req, res) => route(instance, req, res),
          }),
        );
      }
    } catch (err) {
      await Promise.all(instances.map((instance) => instance.stop()));
      throw err;
    }
    const sim = new MarathonSim(instances, host);
    route = (instance, req, res) => sim.route(instance, req, res);
    return sim;
  }

  /** Creates or updates an app and resolves with its tasks once they are TASK_RUNNING. */
  async deploy(app: SimAppSpec): Promise<SimTask[]> {
    const appId = normalizeAppId(app.id);
    await this.applyAppSpec(app, `/v2/apps${appId}`).done;
    return this.tasks(appId);
  }

  /** Scales up (launching tasks) or down (killing the newest), as a Marathon deployment. */
  async scale(appId: string, instances: number): Promise<void> {
    const app = this.requireApp(appId);
    await this.applyAppSpec({ ...app.spec, instances }, `/v2/apps${app.spec.id}`).done;
  }

  /**
   * Kills one task. By default the app's instance count drops by one (Marathon's `scale=true`);
   * with `replace: true` a replacement is launched and the count is kept (Marathon's default).
   * Resolves when the task is TASK_KILLED (after the grace period, if the app has one), or with
   * `wait: false` as soon as the kill has started (TASK_KILLING published, when there is a grace period).
   */
  async killTask(taskId: string, opts: KillTaskOptions = {}): Promise<void> {
    const { app, task } = this.requireTask(taskId);
    const done = opts.replace ? this.killAndReplace(app, task) : this.beginKillAndScale(app, [task]).done;
    if (opts.wait !== false) return done;
    done.catch(() => undefined);
    // The scale deployment starts its kills a microtask later; starting this one now publishes TASK_KILLING
    // before we return, and the deployment joins the pending kill.
    this.killTaskRecord(app, task).catch(() => undefined);
  }

  /**
   * Creates many apps at once, all their tasks already TASK_RUNNING (with health checks: a passed
   * check, or a failed one when `startHealthy` is false), without per-task events: only one
   * `group_change_success` is published. Every app needs `backendPorts` (its tasks are virtual) and
   * must not exist yet; on any invalid spec nothing is loaded. App versions, then tasks' `stagedAt`
   * and `startedAt`, are distinct past timestamps one millisecond apart.
   */
  loadBulk(apps: SimAppSpec[]): void {
    this.assertRunning();
    const specs = apps.map((app) => normalizeSpec(app));
    const ids = new Set<string>();
    let taskTotal = 0;
    for (const spec of specs) {
      if (spec.backendPorts === undefined) {
        throw new Error(`loadBulk: app ${spec.id} has no backendPorts; bulk-loaded apps must have virtual tasks`);
      }
      if (ids.has(spec.id)) throw new Error(`loadBulk: app ${spec.id} is given twice`);
      if (this.apps.has(spec.id)) throw new Error(`loadBulk: app ${spec.id} already exists`);
      ids.add(spec.id);
      taskTotal += spec.instances;
    }
    if (specs.length === 0) return;
    const clock = new IsoClock(Date.now() - 1000 - specs.length - 2 * taskTotal);
    for (const spec of specs) {
      const version = clock.next();
      const app = this.newAppRecord(spec, version);
      const ports = spec.backendPorts!;
      const prefix = taskIdPrefix(spec.id);
      const hasChecks = spec.healthChecks.length > 0;
      // One random UUID per app, its last 47 bits counting up per task (the top bit of that group set, so
      // it always prints as 12 hex digits): unique within the app, and the prefix tells apps apart.
      const appUuid = randomUUID();
      const uuidHead = appUuid.slice(0, 24);
      const idHead = `${prefix}.${uuidHead}`;
      const instanceIdHead = `${prefix}.marathon-${uuidHead}`;
      const uuidTail = Number.parseInt(appUuid.slice(24), 16) % UUID_TAIL_RANGE;
      for (let n = 0; n < spec.instances; n += 1) {
        const tail = (UUID_TAIL_RANGE + ((uuidTail + n) % UUID_TAIL_RANGE)).toString(16);
        const stagedAt = clock.next();
        const startedAt = clock.next();
        const task: TaskRecord = {
          id: idHead + tail,
          instanceId: instanceIdHead + tail,
          appId: spec.id,
          host: this.host,
          port: ports[n % ports.length]!,
          morePorts: morePortsOf(spec, n),
          slaveId: this.slaveId,
          version,
          stagedAt,
          server: null,
          state: 'TASK_RUNNING',
          startedAt,
          health: hasChecks ? bulkHealth(spec.startHealthy, startedAt) : null,
          checkOutcome: spec.startHealthy,
        };
        app.tasks.set(task.id, task);
      }
      app.launched = spec.instances;
      this.addApp(app);
    }
    this.publish(groupChangeSuccessEvent('/', isoNow()));
    this.changed();
  }

  /**
   * Renders every app's `GET /v2/apps?embed=apps.tasks` JSON now, into the per-app cache the listing is
   * served from, and returns how long that took (ms). Without it the first listing after loadBulk()
   * renders 10,000 apps before its first byte (0.5 s), which is the simulator's own cost: a benchmark of
   * the reader calls this first and reports the figure apart.
   */
  renderListing(): number {
    const started = performance.now();
    for (const app of this.apps.values()) renderAppJson(app, true);
    return performance.now() - started;
  }

  /**
   * Calls `listener(event, publishedAt)` synchronously for every event published on the bus from now on
   * (also while streams are stalled); returns the unsubscribe function. A listener that throws does not
   * disturb the sim: its error is rethrown in a microtask (an uncaught exception).
   */
  onEvent(listener: SimEventListener): () => void {
    const entry: SimEventListener = (event, publishedAt) => listener(event, publishedAt);
    this.eventListeners.add(entry);
    return () => {
      this.eventListeners.delete(entry);
    };
  }

  /**
   * Requests the task's own HTTP server received (Date.now() at arrival), also after the task was killed
   * and removed. undefined for a virtual task (backendPorts) or an unknown id.
   */
  taskStats(taskId: string): TaskRequestStats | undefined {
    const stats = this.requestStats.get(taskId);
    return stats ? { ...stats } : undefined;
  }

  /** Kills every task of the app, then emits `app_terminated_event` and forgets the app. */
  async removeApp(appId: string): Promise<void> {
    await this.beginRemoveApp(appId).done;
  }

  /**
   * Rolling restart, as Marathon with minimumHealthCapacity 1: per step, launch `batch` (default 1)
   * new tasks, wait until they are TASK_RUNNING and (with health checks) alive, then kill as many
   * old ones (through TASK_KILLING during the grace period). A step does not wait for earlier kills'
   * grace periods; the promise resolves once every old task is TASK_KILLED.
   * New tasks that never pass their checks (startHealthy false, or after a failover) hold the restart
   * until setHealth()/restoreHealth() reports them alive.
   */
  async restartApp(appId: string, opts: RestartOptions = {}): Promise<void> {
    await this.beginRestartApp(appId, opts).done;
  }

  /**
   * Sets a task's health-check outcome and emits Marathon's health events when it changes
   * (a task without results gets a fresh `firstSuccess`). `null` drops the task's results
   * without an event, as after a leader failover.
   */
  setHealth(taskId: string, alive: boolean | null): void {
    const { app, task } = this.requireTask(taskId);
    if (app.spec.healthChecks.length === 0) throw new Error(`app ${app.spec.id} has no health checks`);
    if (alive === null) {
      task.health = null;
      invalidateRendering(app);
      this.changed();
      return;
    }
    this.cancelFirstCheck(task.id);
    task.checkOutcome = alive;
    this.recordHealth(app, task, alive);
  }

  /**
   * Gives back health results to every running task that has none (after electLeader() or
   * setHealth(id, null)), as a fresh health checker would: each task's last known outcome,
   * with `firstSuccess` = now, and Marathon's health events. Tasks still inside their
   * firstHealthyAfterMs delay are left to it.
   */
  restoreHealth(): void {
    for (const app of this.apps.values()) {
      if (app.spec.healthChecks.length === 0) continue;
      for (const task of app.tasks.values()) {
        if (task.state !== 'TASK_RUNNING' || task.health !== null || this.firstChecks.has(task.id)) continue;
        this.recordHealth(app, task, task.checkOutcome);
      }
    }
  }

  /** Backdates a task's `startedAt` and `stagedAt` (ISO 8601), e.g. for publication-delay tests. */
  setStartedAt(taskId: string, iso: string): void {
    if (Number.isNaN(Date.parse(iso))) throw new Error(`not an ISO 8601 timestamp: ${iso}`);
    const { app, task } = this.requireTask(taskId);
    task.startedAt = iso;
    task.stagedAt = iso;
    invalidateRendering(app);
  }

  /** Index (into `urls`) of the current leader. */
  leaderIndex(): number {
    return this.leader;
  }

  /**
   * A leader election won by instance `index` (re-electing the current leader counts too):
   * every open `/v2/events` stream on every instance is cut, and every task loses its health
   * results (the new leader has not checked yet) until setHealth()/restoreHealth().
   * An instance that is down may be elected; there is no leader until it is up again.
   */
  async electLeader(index: number): Promise<void> {
    this.requireInstance(index);
    if (this.stopping) return;
    this.leader = index;
    for (const instance of this.instances) instance.hub.disconnectAll();
    for (const app of this.apps.values()) {
      for (const task of app.tasks.values()) task.health = null;
      invalidateRendering(app);
    }
    this.changed();
    await nextTurn();
  }

  /** electLeader() of the next instance, round robin. */
  forceFailover(): Promise<void> {
    return this.electLeader((this.leader + 1) % this.instances.length);
  }

  /**
   * `true`: instance `index` cuts its event streams and refuses connections; `false`: it listens
   * again on the same port. Taking the leader down leaves the cluster without a leader.
   */
  async setInstanceDown(index: number, down: boolean): Promise<void> {
    const instance = this.requireInstance(index);
    if (this.stopping) return;
    await instance.setDown(down);
  }

  /** Listed tasks (including TASK_STAGING and TASK_KILLING), of one app or of all. */
  tasks(appId?: string): SimTask[] {
    const apps = appId === undefined ? [...this.apps.values()] : [this.apps.get(normalizeAppId(appId))];
    return apps.flatMap((app) => (app ? [...app.tasks.values()].map(toSimTask) : []));
  }

  /** Number of listed tasks of the app, optionally only those in `state` (e.g. 'TASK_RUNNING'). */
  taskCount(appId: string, state?: string): number {
    return this.tasks(appId).filter((task) => state === undefined || task.state === state).length;
  }

  /**
   * The whole Marathon unreachable. `true`: every instance cuts its event streams and refuses
   * connections (tasks keep running); `false`: every instance listens again on its port.
   */
  async setUnavailable(down: boolean): Promise<void> {
    if (this.stopping) return;
    await Promise.all(this.instances.map((instance) => instance.setDown(down)));
  }

  /** While true, event streams stay open but receive nothing, not even heartbeats; events are lost. */
  stallEvents(stall: boolean): void {
    for (const instance of this.instances) instance.hub.setStalled(stall);
  }

  /**
   * When non-null, `GET /v2/apps` answers exactly this body (for malformed-JSON tests).
   * `onServed` runs, synchronously, each time the body is sent.
   */
  setRawAppsResponse(body: string | null, onServed?: () => void): void {
    this.rawApps = body;
    this.onRawAppsServed = body === null ? null : (onServed ?? null);
  }

  /** Events published on the bus so far, including stream attach/detach events. */
  eventCount(): number {
    return this.published;
  }

  /** Open `/v2/events` streams, over all instances. */
  eventStreamCount(): number {
    return this.instances.reduce((sum, instance) => sum + instance.hub.clientCount(), 0);
  }

  /** Publishes an arbitrary event, e.g. one of the fixtures or an unknown event type. */
  publishEvent(event: MarathonEvent): void {
    this.publish(event);
  }

  /**
   * Writes `frame` on every event stream exactly as given (see frameSseEvent in
   * test/fuzz): data that is not JSON, or not an object, which publishEvent cannot send.
   */
  publishRawFrame(frame: string): void {
    this.published += 1;
    for (const instance of this.instances) instance.hub.publishRaw(frame);
  }

  /** Closes event streams, every instance's server and every task server. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.firstChecks.values()) clearTimeout(timer);
    this.firstChecks.clear();
    this.changed();
    for (const instance of this.instances) instance.hub.close();
    const kills = [...this.pendingKills.values()];
    for (const kill of kills) kill.endGrace();
    await Promise.allSettled(kills.map((kill) => kill.done));
    const taskServers: TaskServer[] = [];
    for (const app of this.apps.values()) for (const task of app.tasks.values()) if (task.server) taskServers.push(task.server);
    await Promise.all([...this.instances.map((instance) => instance.stop()), ...taskServers.map((server) => server.close())]);
    this.apps.clear();
    this.appIdsByTaskPrefix.clear();
  }

  /** Leader: serve. Standby: answer the local paths, redirect `/v2/events`, proxy the rest. */
  private route(instance: MarathonInstance, req: IncomingMessage, res: ServerResponse): void {
    const api = this.apiHandlers[instance.index]!;
    if (instance.index === this.leader) {
      res.setHeader('X-Marathon-Leader', instance.url);
      return api(req, res);
    }
    const path = new URL(req.url ?? '/', 'http://marathon.invalid').pathname;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && STANDBY_LOCAL_PATHS.has(path)) return api(req, res);
    const leader = this.instances[this.leader]!;
    if (leader.isDown()) {
      req.resume();
      return sendMessage(res, 503, NO_LEADER_MESSAGE);
    }
    if (get && path === '/v2/events') return redirectEventsToLeader(req, res, leader.url);
    proxyToLeader(req, res, leader.url, instance.hostPort);
  }

  private backend(instance: MarathonInstance): MarathonBackend {
    const leaderAddress = (): string | null => {
      const leader = this.instances[this.leader]!;
      return leader.isDown() ? null : leader.hostPort;
    };
    return {
      leaderAddress,
      info: () =>
        renderInfo({
          leader: leaderAddress(),
          elected: instance.index === this.leader,
          frameworkId: this.frameworkId,
          host: this.host,
          port: instance.port,
          tls: instance.tls,
        }),
      apps: () => [...this.apps.values()],
      findApp: (appId) => this.apps.get(normalizeAppId(appId)),
      findTask: (taskId) => this.findTask(taskId),
      rawAppsResponse: () => {
        if (this.rawApps !== null) this.onRawAppsServed?.();
        return this.rawApps;
      },
      deployments: () => [...this.plans.values()],
      openEventStream: (req, res, eventTypes) => this.openEventStream(instance, req, res, eventTypes),
      applyAppSpec: (spec, uri) => this.applyAppSpec(spec, uri),
      beginRemoveApp: (appId) => this.beginRemoveApp(appId),
      beginRestartApp: (appId) => this.beginRestartApp(appId, {}),
      beginKillAndScale: (app, tasks) => this.beginKillAndScale(app, tasks),
      killAndReplace: (app, task) => this.killAndReplace(app, task),
    };
  }

  private openEventStream(
    instance: MarathonInstance,
    req: IncomingMessage,
    res: ServerResponse,
    eventTypes: ReadonlySet<string> | null,
  ): void {
    const remoteAddress = instance.hub.attach(req, res, eventTypes, (gone) => this.publish(eventStreamDetached(gone)));
    this.publish(eventStreamAttached(remoteAddress));
  }

  /** Streams live on the leader only (standbys redirect them), so every hub gets every event. */
  private publish(event: MarathonEvent): void {
    const publishedAt = Date.now();
    this.published += 1;
    for (const instance of this.instances) instance.hub.publish(event);
    if (this.eventListeners.size === 0) return;
    for (const listener of [...this.eventListeners]) {
      try {
        listener(event, publishedAt);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Runs the listeners after a task state or health change. */
  private changed(): void {
    for (const listener of [...this.changeListeners]) listener();
  }

  /** Resolves once `condition` holds (re-checked after every change), or at stop(). */
  private waitUntil(condition: () => boolean): Promise<void> {
    if (this.stopping || condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.stopping && !condition()) return;
        this.changeListeners.delete(check);
        resolve();
      };
      this.changeListeners.add(check);
    });
  }

  private applyAppSpec(spec: SimAppSpec, uri: string): DeploymentTicket {
    this.assertRunning();
    const normalized = normalizeSpec(spec);
    const existing = this.apps.get(normalized.id);
    const app = existing && !existing.removing ? this.updateApp(existing, normalized) : this.createApp(normalized);
    this.publish(apiPostEvent(renderAppDefinition(app), uri));
    return this.beginDeployment(app, 'ScaleApplication', () => this.reconcileInstances(app));
  }

  /** A new app, versioned at `version`, with no tasks yet. */
  private newAppRecord(spec: NormalizedAppSpec, version: string): AppRecord {
    return {
      spec,
      version,
      lastConfigChangeAt: version,
      lastScalingAt: version,
      servicePort: this.nextServicePort++,
      deployments: new Set(),
      tasks: new Map(),
      launching: 0,
      removing: false,
      launched: 0,
      rendered: { withTasks: null, withoutTasks: null },
    };
  }

  private createApp(spec: NormalizedAppSpec): AppRecord {
    const app = this.newAppRecord(spec, isoNow());
    this.addApp(app);
    return app;
  }

  /** Lists the app, replacing any record of the same id. */
  private addApp(app: AppRecord): void {
    const prefix = taskIdPrefix(app.spec.id);
    let ids = this.appIdsByTaskPrefix.get(prefix);
    if (!ids) this.appIdsByTaskPrefix.set(prefix, (ids = new Set()));
    ids.add(app.spec.id);
    this.apps.set(app.spec.id, app);
  }

  /** Forgets the app, unless its id already names a newer record. */
  private forgetApp(app: AppRecord): void {
    if (this.apps.get(app.spec.id) !== app) return;
    this.apps.delete(app.spec.id);
    const prefix = taskIdPrefix(app.spec.id);
    const ids = this.appIdsByTaskPrefix.get(prefix);
    ids?.delete(app.spec.id);
    if (ids?.size === 0) this.appIdsByTaskPrefix.delete(prefix);
  }

  private updateApp(app: AppRecord, spec: NormalizedAppSpec): AppRecord {
    const now = isoNow();
    if (!sameConfig(app.spec, spec)) app.lastConfigChangeAt = now;
    app.spec = spec;
    app.version = now;
    app.lastScalingAt = now;
    invalidateRendering(app);
    return app;
  }

  /** Wraps `work` in deployment_info … deployment_success (or _failed) events. */
  private beginDeployment(app: AppRecord, action: DeploymentAction, work: () => Promise<void>): DeploymentTicket {
    const plan: DeploymentPlan = { id: randomUUID(), version: app.version, action, appId: app.spec.id };
    this.plans.set(plan.id, plan);
    app.deployments.add(plan.id);
    invalidateRendering(app);
    this.publish(deploymentInfoEvent(plan));
    const finish = (): void => {
      this.plans.delete(plan.id);
      app.deployments.delete(plan.id);
      invalidateRendering(app);
    };
    const done = Promise.resolve()
      .then(work)
      .then(
        () => {
          finish();
          this.publish(deploymentStepSuccessEvent(plan));
          this.publish(deploymentSuccessEvent(plan));
        },
        (err: unknown) => {
          finish();
          this.publish(deploymentStepFailureEvent(plan));
          this.publish(deploymentFailedEvent(plan, err instanceof Error ? err.message : String(err)));
          throw err;
        },
      );
    return { deploymentId: plan.id, version: app.version, done };
  }

  private async reconcileInstances(app: AppRecord): Promise<void> {
    const active = activeTasks(app);
    const missing = app.spec.instances - active.length - app.launching;
    if (missing > 0) {
      await Promise.all(Array.from({ length: missing }, () => this.launchTask(app)));
    } else if (missing < 0) {
      const newest = active.slice(missing);
      await Promise.all(newest.map((task) => this.killTaskRecord(app, task)));
    }
  }

  private beginKillAndScale(app: AppRecord, tasks: TaskRecord[]): DeploymentTicket {
    this.assertRunning();
    const now = isoNow();
    app.spec = { ...app.spec, instances: Math.max(0, app.spec.instances - tasks.length) };
    app.version = now;
    app.lastScalingAt = now;
    invalidateRendering(app);
    return this.beginDeployment(app, 'ScaleApplication', async () => {
      await Promise.all(tasks.map((task) => this.killTaskRecord(app, task)));
    });
  }

  private async killAndReplace(app: AppRecord, task: TaskRecord): Promise<void> {
    this.assertRunning();
    await Promise.all([this.killTaskRecord(app, task), this.launchTask(app)]);
  }

  private beginRemoveApp(appId: string): DeploymentTicket {
    this.assertRunning();
    const app = this.requireApp(appId);
    app.removing = true;
    return this.beginDeployment(app, 'StopApplication', async () => {
      await Promise.all([...app.tasks.values()].map((task) => this.killTaskRecord(app, task)));
      this.forgetApp(app);
      this.publish(appTerminatedEvent(app));
    });
  }

  private beginRestartApp(appId: string, opts: RestartOptions): DeploymentTicket {
    this.assertRunning();
    const batch = opts.batch ?? 1;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
    const app = this.requireApp(appId);
    const now = isoNow();
    app.version = now;
    app.lastConfigChangeAt = now;
    invalidateRendering(app);
    const oldTasks = activeTasks(app);
    return this.beginDeployment(app, 'RestartApplication', () => this.rollTasks(app, oldTasks, batch));
  }

  private async rollTasks(app: AppRecord, oldTasks: TaskRecord[], batch: number): Promise<void> {
    const hasChecks = app.spec.healthChecks.length > 0;
    const ready = (task: TaskRecord): boolean =>
      !app.tasks.has(task.id) || (task.state === 'TASK_RUNNING' && (!hasChecks || task.health?.alive === true));
    const kills: Array<Promise<void>> = [];
    for (;;) {
      if (this.stopping || app.removing) return;
      const left = oldTasks.filter((task) => app.tasks.has(task.id) && !this.pendingKills.has(task.id));
      if (left.length === 0) break;
      const count = Math.min(batch, left.length);
      const launched = await Promise.all(Array.from({ length: count }, () => this.launchTask(app)));
      const fresh = launched.filter((task): task is TaskRecord => task !== null);
      await this.waitUntil(() => fresh.every(ready));
      if (this.stopping || app.removing) return;
      kills.push(...left.slice(0, count).map((task) => this.killTaskRecord(app, task)));
    }
    // Old tasks someone else was already killing count as well.
    await Promise.all([...kills, ...oldTasks.map((task) => this.pendingKills.get(task.id)?.done)]);
  }

  /**
   * Starts the task's server (none for a virtual task: it takes the app's next backend port), then walks
   * it through TASK_STAGING and TASK_RUNNING. Null if it never got listed.
   */
  private async launchTask(app: AppRecord): Promise<TaskRecord | null> {
    const uuid = randomUUID();
    const prefix = taskIdPrefix(app.spec.id);
    const taskId = `${prefix}.${uuid}`;
    const backendPorts = app.spec.backendPorts;
    let server: TaskServer | null = null;
    let stats: TaskRequestStats | null = null;
    let port: number;
    if (backendPorts !== undefined) {
      if (this.stopping || app.removing) return null;
      port = backendPorts[app.launched % backendPorts.length]!;
    } else {
      stats = { requests: 0, firstRequestAt: null, lastRequestAt: null };
      app.launching += 1;
      let started: TaskServer;
      try {
        started = await startTaskServer(taskId, this.host, stats);
      } finally {
        app.launching -= 1;
      }
      if (this.stopping || app.removing) {
        await started.close();
        return null;
      }
      server = started;
      port = started.port;
    }
    const morePorts = morePortsOf(app.spec, app.launched);
    app.launched += 1;
    const task: TaskRecord = {
      id: taskId,
      // Marathon's legacy mapping between a task id and its instance id.
      instanceId: `${prefix}.marathon-${uuid}`,
      appId: app.spec.id,
      host: this.host,
      port,
      morePorts,
      slaveId: this.slaveId,
      version: app.version,
      stagedAt: isoNow(),
      server,
      state: 'TASK_STAGING',
      startedAt: null,
      health: null,
      checkOutcome: app.spec.startHealthy,
    };
    app.tasks.set(task.id, task);
    if (stats) this.requestStats.set(task.id, stats);
    this.announceState(app, task);
    // Lets a consumer see TASK_STAGING in the listings before the task runs.
    await nextTurn();
    if (task.state !== 'TASK_STAGING') return task;
    task.state = 'TASK_RUNNING';
    task.startedAt = isoNow();
    this.announceState(app, task);
    if (app.spec.healthChecks.length > 0) this.scheduleFirstCheck(app, task);
    return task;
  }

  /** The first health result: at once, or firstHealthyAfterMs after TASK_RUNNING. */
  private scheduleFirstCheck(app: AppRecord, task: TaskRecord): void {
    const delayMs = app.spec.firstHealthyAfterMs;
    if (delayMs <= 0) return this.recordHealth(app, task, task.checkOutcome);
    const timer = setTimeout(() => {
      this.firstChecks.delete(task.id);
      if (this.stopping || !app.tasks.has(task.id) || task.health !== null) return;
      this.recordHealth(app, task, task.checkOutcome);
    }, delayMs);
    timer.unref();
    this.firstChecks.set(task.id, timer);
  }

  private cancelFirstCheck(taskId: string): void {
    const timer = this.firstChecks.get(taskId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.firstChecks.delete(taskId);
  }

  private announceState(app: AppRecord, task: TaskRecord): void {
    invalidateRendering(app);
    this.publish(statusUpdateEvent(task, task.state));
    this.publish(instanceChangedEvent(task, task.state, task.version));
    this.changed();
  }

  private recordHealth(app: AppRecord, task: TaskRecord, alive: boolean): void {
    const previous = task.health;
    task.health = alive ? passedCheck(previous) : failedCheck(previous);
    invalidateRendering(app);
    const firstCheck = app.spec.healthChecks[0];
    if (!alive && firstCheck) this.publish(failedHealthCheckEvent(task, firstCheck));
    if (previous?.alive !== alive) {
      this.publish(healthStatusChangedEvent(task, alive));
      this.publish(instanceHealthChangedEvent(task, alive));
    }
    this.changed();
  }

  /**
   * With a grace period: TASK_KILLING now, the server keeps answering, TASK_KILLED when it ends.
   * Without one, the task stays TASK_RUNNING for the app's killLatencyMs, then dies.
   * Concurrent kills of one task share one outcome.
   */
  private killTaskRecord(app: AppRecord, task: TaskRecord): Promise<void> {
    const pending = this.pendingKills.get(task.id);
    if (pending) return pending.done;
    if (!app.tasks.has(task.id)) return Promise.resolve();
    const graceMs = app.spec.taskKillGracePeriodSeconds * 1000;
    const waitMs = graceMs > 0 ? graceMs : app.spec.killLatencyMs;
    let endGrace: () => void = () => undefined;
    const graceOver =
      waitMs > 0
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, waitMs);
            endGrace = () => {
              clearTimeout(timer);
              resolve();
            };
          })
        : Promise.resolve();
    if (graceMs > 0) {
      task.state = 'TASK_KILLING';
      this.announceState(app, task);
    }
    const done = graceOver
      .then(() => this.finishKill(app, task))
      .finally(() => this.pendingKills.delete(task.id));
    this.pendingKills.set(task.id, { done, endGrace });
    return done;
  }

  private async finishKill(app: AppRecord, task: TaskRecord): Promise<void> {
    // The process is gone before Mesos reports it, so the port refuses by the time TASK_KILLED arrives.
    await task.server?.close();
    this.cancelFirstCheck(task.id);
    app.tasks.delete(task.id);
    task.state = 'TASK_KILLED';
    this.announceState(app, task);
  }

  /** A listed task of a listed app; task ids are "<taskIdPrefix(appId)>.<uuid>". */
  private findTask(taskId: string): { app: AppRecord; task: TaskRecord } | undefined {
    const dot = taskId.lastIndexOf('.');
    const ids = dot < 0 ? undefined : this.appIdsByTaskPrefix.get(taskId.slice(0, dot));
    if (!ids) return undefined;
    for (const appId of ids) {
      const app = this.apps.get(appId);
      const task = app?.tasks.get(taskId);
      if (app && task) return { app, task };
    }
    return undefined;
  }

  private requireTask(taskId: string): { app: AppRecord; task: TaskRecord } {
    const found = this.findTask(taskId);
    if (!found) throw new Error(`task ${taskId} does not exist`);
    return found;
  }

  private requireApp(appId: string): AppRecord {
    const app = this.apps.get(normalizeAppId(appId));
    if (!app || app.removing) throw new Error(`App '${normalizeAppId(appId)}' does not exist`);
    return app;
  }

  private requireInstance(index: number): MarathonInstance {
    const instance = this.instances[index];
    if (!Number.isInteger(index) || !instance) throw new Error(`no Marathon instance ${index} (have ${this.instances.length})`);
    return instance;
  }

  private assertRunning(): void {
    if (this.stopping) throw new Error('MarathonSim is stopped');
  }
}

function passedCheck(previous: HealthRecord | null): HealthRecord {
  const now = isoNow();
  return {
    alive: true,
    consecutiveFailures: 0,
    firstSuccess: previous?.firstSuccess ?? now,
    lastSuccess: now,
    lastFailure: previous?.lastFailure ?? null,
    lastFailureCause: previous?.lastFailureCause ?? null,
  };
}

/** 2^47: bulk task UUIDs end in 12 hex digits from 8000_0000_0000 up. */
const UUID_TAIL_RANGE = 2 ** 47;

/** ".000Z" … ".999Z" */
const MILLIS_SUFFIXES = Array.from({ length: 1000 }, (_, ms) => `.${String(ms).padStart(3, '0')}Z`);

/** ISO 8601 timestamps one millisecond apart, from `startMs` on, without a Date per stamp. */
class IsoClock {
  private second = -1;
  private head = '';

  constructor(private ms: number) {}

  next(): string {
    const ms = this.ms++;
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      this.second = second;
      this.head = new Date(second * 1000).toISOString().slice(0, 19); // "2024-01-02T03:04:05"
    }
    return this.head + MILLIS_SUFFIXES[ms - second * 1000]!;
  }
}

/** The health of a bulk-loaded task, checked once at `at`. */
function bulkHealth(alive: boolean, at: string): HealthRecord {
  return alive
    ? { alive: true, consecutiveFailures: 0, firstSuccess: at, lastSuccess: at, lastFailure: null, lastFailureCause: null }
    : { alive: false, consecutiveFailures: 1, firstSuccess: null, lastSuccess: null, lastFailure: at, lastFailureCause: FAILED_CHECK_CAUSE };
}

function failedCheck(previous: HealthRecord | null): HealthRecord {
  return {
    alive: false,
    consecutiveFailures: (previous?.consecutiveFailures ?? 0) + 1,
    firstSuccess: previous?.firstSuccess ?? null,
    lastSuccess: previous?.lastSuccess ?? null,
    lastFailure: isoNow(),
    lastFailureCause: FAILED_CHECK_CAUSE,
  };
}

/** True when two specs differ at most in `instances`: a pure scaling. */
function sameConfig(a: NormalizedAppSpec, b: NormalizedAppSpec): boolean {
  return JSON.stringify({ ...a, instances: 0 }) === JSON.stringify({ ...b, instances: 0 });
}
