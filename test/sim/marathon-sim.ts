import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
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
  healthStatusChangedEvent,
  instanceChangedEvent,
  instanceHealthChangedEvent,
  statusUpdateEvent,
  type DeploymentAction,
  type DeploymentPlan,
  type MarathonEvent,
} from './marathon-events.js';
import { renderAppDefinition, renderInfo } from './marathon-json.js';
import { closeServer, listen } from './server-lifecycle.js';
import {
  activeTasks,
  isoNow,
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
import { SseHub } from './sse-hub.js';
import { startTaskServer, type TaskServer } from './task-server.js';

export type { SimAppSpec, SimTask } from './sim-model.js';
export type { MarathonEvent } from './marathon-events.js';

export interface MarathonSimOptions {
  /** Period of the bare `\r\n` SSE heartbeat; Marathon (Jetty) uses 10 s. */
  heartbeatMs?: number;
  /** Address the API and every task server listen on, and the `host` tasks report. */
  host?: string;
}

interface PendingKill {
  readonly done: Promise<void>;
  /** Ends the grace period now (used by stop()). */
  readonly endGrace: () => void;
}

const FAILED_CHECK_CAUSE = 'ConnectException: Connection refused';

/**
 * An in-process Marathon 1.10 for tests and the demo: the `/v2` REST API, the `/v2/events`
 * SSE stream in Jetty's framing, and one real HTTP server per task.
 *
 * Unlike Marathon, changing an app's labels or health checks with deploy() keeps its running
 * tasks; call restartApp() to roll them.
 */
export class MarathonSim {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  private readonly apps = new Map<string, AppRecord>();
  private readonly plans = new Map<string, DeploymentPlan>();
  private readonly pendingKills = new Map<string, PendingKill>();
  private readonly slaveId = `${randomUUID()}-S0`;
  private readonly frameworkId = `${randomUUID()}-0000`;
  private nextServicePort = 10000;
  private published = 0;
  private rawApps: string | null = null;
  private unavailable = false;
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    private readonly hub: SseHub,
    private readonly host: string,
    private readonly port: number,
  ) {
    this.url = `http://${host}:${port}`;
  }

  /** Starts a simulator on a free port of `host` (default 127.0.0.1). */
  static async start(opts: MarathonSimOptions = {}): Promise<MarathonSim> {
    const host = opts.host ?? '127.0.0.1';
    const hub = new SseHub(opts.heartbeatMs ?? 10_000);
    const server = createServer();
    try {
      await listen(server, 0, host);
    } catch (err) {
      hub.close();
      throw err;
    }
    const sim = new MarathonSim(server, hub, host, (server.address() as AddressInfo).port);
    server.on('request', createApiHandler(sim.backend()));
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
   * Resolves when the task is TASK_KILLED (after the grace period, if the app has one).
   */
  async killTask(taskId: string, opts: { replace?: boolean } = {}): Promise<void> {
    const { app, task } = this.requireTask(taskId);
    if (opts.replace) await this.killAndReplace(app, task);
    else await this.beginKillAndScale(app, [task]).done;
  }

  /** Kills every task of the app, then emits `app_terminated_event` and forgets the app. */
  async removeApp(appId: string): Promise<void> {
    await this.beginRemoveApp(appId).done;
  }

  /** Rolls every task of the app: launch one new task, kill one old, until none is old. */
  async restartApp(appId: string): Promise<void> {
    await this.beginRestartApp(appId).done;
  }

  /**
   * Sets a task's health-check outcome and emits Marathon's health events when it changes.
   * `null` drops the task's results without an event, as after a leader failover.
   */
  setHealth(taskId: string, alive: boolean | null): void {
    const { app, task } = this.requireTask(taskId);
    if (app.spec.healthChecks.length === 0) throw new Error(`app ${app.spec.id} has no health checks`);
    if (alive === null) task.health = null;
    else this.recordHealth(app, task, alive);
  }

  /** Listed tasks (including TASK_STAGING and TASK_KILLING), of one app or of all. */
  tasks(appId?: string): SimTask[] {
    const apps = appId === undefined ? [...this.apps.values()] : [this.apps.get(normalizeAppId(appId))];
    return apps.flatMap((app) => (app ? [...app.tasks.values()].map(toSimTask) : []));
  }

  /**
   * `true`: cut every event stream and refuse connections on the port (tasks keep running).
   * `false`: listen again on the same port.
   */
  async setUnavailable(down: boolean): Promise<void> {
    if (this.stopping || down === this.unavailable) return;
    this.unavailable = down;
    if (down) {
      this.hub.disconnectAll();
      await closeServer(this.server);
    } else {
      await listen(this.server, this.port, this.host);
    }
  }

  /** While true, event streams stay open but receive nothing, not even heartbeats; events are lost. */
  stallEvents(stall: boolean): void {
    this.hub.setStalled(stall);
  }

  /** When non-null, `GET /v2/apps` answers exactly this body (for malformed-JSON tests). */
  setRawAppsResponse(body: string | null): void {
    this.rawApps = body;
  }

  /** Events published on the bus so far, including stream attach/detach events. */
  eventCount(): number {
    return this.published;
  }

  /** Open `/v2/events` streams. */
  eventStreamCount(): number {
    return this.hub.clientCount();
  }

  /** Publishes an arbitrary event, e.g. one of the fixtures or an unknown event type. */
  publishEvent(event: MarathonEvent): void {
    this.publish(event);
  }

  /** Closes event streams, the API server and every task server. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.hub.close();
    const kills = [...this.pendingKills.values()];
    for (const kill of kills) kill.endGrace();
    await Promise.allSettled(kills.map((kill) => kill.done));
    const taskServers = [...this.apps.values()].flatMap((app) => [...app.tasks.values()].map((task) => task.server));
    await Promise.all([closeServer(this.server), ...taskServers.map((server) => server.close())]);
    this.apps.clear();
  }

  private backend(): MarathonBackend {
    return {
      leaderAddress: () => `${this.host}:${this.port}`,
      info: () => renderInfo(`${this.host}:${this.port}`, this.frameworkId, this.port),
      apps: () => [...this.apps.values()],
      findApp: (appId) => this.apps.get(normalizeAppId(appId)),
      findTask: (taskId) => this.findTask(taskId),
      rawAppsResponse: () => this.rawApps,
      deployments: () => [...this.plans.values()],
      openEventStream: (req, res, eventTypes) => this.openEventStream(req, res, eventTypes),
      applyAppSpec: (spec, uri) => this.applyAppSpec(spec, uri),
      beginRemoveApp: (appId) => this.beginRemoveApp(appId),
      beginRestartApp: (appId) => this.beginRestartApp(appId),
      beginKillAndScale: (app, tasks) => this.beginKillAndScale(app, tasks),
      killAndReplace: (app, task) => this.killAndReplace(app, task),
    };
  }

  private openEventStream(req: IncomingMessage, res: ServerResponse, eventTypes: ReadonlySet<string> | null): void {
    const remoteAddress = this.hub.attach(req, res, eventTypes, (gone) => this.publish(eventStreamDetached(gone)));
    this.publish(eventStreamAttached(remoteAddress));
  }

  private publish(event: MarathonEvent): void {
    this.published += 1;
    this.hub.publish(event);
  }

  private applyAppSpec(spec: SimAppSpec, uri: string): DeploymentTicket {
    this.assertRunning();
    const normalized = normalizeSpec(spec);
    const existing = this.apps.get(normalized.id);
    const app = existing && !existing.removing ? this.updateApp(existing, normalized) : this.createApp(normalized);
    this.publish(apiPostEvent(renderAppDefinition(app), uri));
    return this.beginDeployment(app, 'ScaleApplication', () => this.reconcileInstances(app));
  }

  private createApp(spec: NormalizedAppSpec): AppRecord {
    const now = isoNow();
    const app: AppRecord = {
      spec,
      version: now,
      lastConfigChangeAt: now,
      lastScalingAt: now,
      servicePort: this.nextServicePort++,
      deployments: new Set(),
      tasks: new Map(),
      launching: 0,
      removing: false,
    };
    this.apps.set(spec.id, app);
    return app;
  }

  private updateApp(app: AppRecord, spec: NormalizedAppSpec): AppRecord {
    const now = isoNow();
    if (!sameConfig(app.spec, spec)) app.lastConfigChangeAt = now;
    app.spec = spec;
    app.version = now;
    app.lastScalingAt = now;
    return app;
  }

  /** Wraps `work` in deployment_info … deployment_success (or _failed) events. */
  private beginDeployment(app: AppRecord, action: DeploymentAction, work: () => Promise<void>): DeploymentTicket {
    const plan: DeploymentPlan = { id: randomUUID(), version: app.version, action, appId: app.spec.id };
    this.plans.set(plan.id, plan);
    app.deployments.add(plan.id);
    this.publish(deploymentInfoEvent(plan));
    const finish = (): void => {
      this.plans.delete(plan.id);
      app.deployments.delete(plan.id);
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
      if (this.apps.get(app.spec.id) === app) this.apps.delete(app.spec.id);
      this.publish(appTerminatedEvent(app));
    });
  }

  private beginRestartApp(appId: string): DeploymentTicket {
    this.assertRunning();
    const app = this.requireApp(appId);
    const now = isoNow();
    app.version = now;
    app.lastConfigChangeAt = now;
    const oldTasks = activeTasks(app);
    return this.beginDeployment(app, 'RestartApplication', async () => {
      for (const oldTask of oldTasks) {
        await this.launchTask(app);
        await this.killTaskRecord(app, oldTask);
      }
    });
  }

  /** Starts the task's server, then walks it through TASK_STAGING and TASK_RUNNING. */
  private async launchTask(app: AppRecord): Promise<void> {
    const uuid = randomUUID();
    const prefix = taskIdPrefix(app.spec.id);
    const taskId = `${prefix}.${uuid}`;
    let server: TaskServer;
    app.launching += 1;
    try {
      server = await startTaskServer(taskId, this.host);
    } finally {
      app.launching -= 1;
    }
    if (this.stopping || app.removing) return server.close();
    const task: TaskRecord = {
      id: taskId,
      // Marathon's legacy mapping between a task id and its instance id.
      instanceId: `${prefix}.marathon-${uuid}`,
      appId: app.spec.id,
      host: this.host,
      port: server.port,
      slaveId: this.slaveId,
      version: app.version,
      stagedAt: isoNow(),
      server,
      state: 'TASK_STAGING',
      startedAt: null,
      health: null,
    };
    app.tasks.set(task.id, task);
    this.announceState(task);
    // Lets a consumer see TASK_STAGING in the listings before the task runs.
    await nextTurn();
    if (task.state !== 'TASK_STAGING') return;
    task.state = 'TASK_RUNNING';
    task.startedAt = isoNow();
    this.announceState(task);
    if (app.spec.healthChecks.length > 0) this.recordHealth(app, task, app.spec.startHealthy);
  }

  private announceState(task: TaskRecord): void {
    this.publish(statusUpdateEvent(task, task.state));
    this.publish(instanceChangedEvent(task, task.state, task.version));
  }

  private recordHealth(app: AppRecord, task: TaskRecord, alive: boolean): void {
    const previous = task.health;
    task.health = alive ? passedCheck(previous) : failedCheck(previous);
    const firstCheck = app.spec.healthChecks[0];
    if (!alive && firstCheck) this.publish(failedHealthCheckEvent(task, firstCheck));
    if (previous?.alive === alive) return;
    this.publish(healthStatusChangedEvent(task, alive));
    this.publish(instanceHealthChangedEvent(task, alive));
  }

  /**
   * With a grace period: TASK_KILLING now, the server keeps answering, TASK_KILLED when it ends.
   * Concurrent kills of one task share one outcome.
   */
  private killTaskRecord(app: AppRecord, task: TaskRecord): Promise<void> {
    const pending = this.pendingKills.get(task.id);
    if (pending) return pending.done;
    if (!app.tasks.has(task.id)) return Promise.resolve();
    const graceMs = app.spec.taskKillGracePeriodSeconds * 1000;
    let endGrace: () => void = () => undefined;
    const graceOver =
      graceMs > 0
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, graceMs);
            endGrace = () => {
              clearTimeout(timer);
              resolve();
            };
          })
        : Promise.resolve();
    if (graceMs > 0) {
      task.state = 'TASK_KILLING';
      this.announceState(task);
    }
    const done = graceOver
      .then(() => this.finishKill(app, task))
      .finally(() => this.pendingKills.delete(task.id));
    this.pendingKills.set(task.id, { done, endGrace });
    return done;
  }

  private async finishKill(app: AppRecord, task: TaskRecord): Promise<void> {
    // The process is gone before Mesos reports it, so the port refuses by the time TASK_KILLED arrives.
    await task.server.close();
    app.tasks.delete(task.id);
    task.state = 'TASK_KILLED';
    this.announceState(task);
  }

  private findTask(taskId: string): { app: AppRecord; task: TaskRecord } | undefined {
    for (const app of this.apps.values()) {
      const task = app.tasks.get(taskId);
      if (task) return { app, task };
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
