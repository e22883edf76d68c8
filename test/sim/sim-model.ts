import type { TaskServer } from './task-server.js';

/** What a test or the demo asks the simulator to run. */
export interface SimAppSpec {
  /** Marathon app id, e.g. "/web"; a leading "/" is added when missing. */
  id: string;
  instances: number;
  /** Entries whose value is undefined are left out, so optional labels can be written inline. */
  labels?: Record<string, string | undefined>;
  /** Marathon health check definitions; when non-empty, tasks carry healthCheckResults. */
  healthChecks?: Array<Record<string, unknown>>;
  /** Whether new tasks pass their first health check (default true); false: the first result is a failure. */
  startHealthy?: boolean;
  /**
   * How long after TASK_RUNNING a task with health checks is listed without `healthCheckResults`
   * before its first result (default 0: at once). Models Marathon's health-check delay.
   */
  firstHealthyAfterMs?: number;
  /** When > 0 a kill goes through TASK_KILLING and the task keeps answering for that long. */
  taskKillGracePeriodSeconds?: number;
  /**
   * Without a grace period: how long a killed task stays TASK_RUNNING (listed, answering) before it
   * dies, as when Mesos takes its time to stop the container and the framework has no TASK_KILLING
   * state; the app's `instances` already shows the scale-down meanwhile. Default 0.
   */
  killLatencyMs?: number;
  /** Merged into the app JSON as-is (portDefinitions, container, ipAddress, networks, ...). */
  extra?: Record<string, unknown>;
  /**
   * Virtual tasks: when set, the app's tasks start no HTTP server; the n-th task launched for the app
   * (n counts from 0) gets port `backendPorts[n % backendPorts.length]` on the sim's host, so many tasks
   * can share a few real backends the caller runs itself. Everything else (events, states, grace
   * period, health) is unchanged; a kill only changes the task's state and removes it.
   */
  backendPorts?: number[];
  /**
   * A task's ports after the first (port indexes 1, 2, ...), for apps that route several ports:
   * entry i - 1 lists port index i's backends, the n-th task launched for the app (real or virtual)
   * getting `morePorts[i - 1][n % length]` there. Default none: each task has one port.
   */
  morePorts?: number[][];
}

/** A task as tests see it. `healthy` is null when the task has no health results. */
export interface SimTask {
  id: string;
  appId: string;
  host: string;
  port: number;
  /** Every port of the task, by port index: `port`, then the app's `morePorts`. */
  ports: number[];
  state: string;
  startedAt: string | null;
  healthy: boolean | null;
}

export type MesosTaskState = 'TASK_STAGING' | 'TASK_RUNNING' | 'TASK_KILLING' | 'TASK_KILLED';

/** One task's health-check outcome; rendered once per app health check, as Marathon does. */
export interface HealthRecord {
  alive: boolean;
  consecutiveFailures: number;
  firstSuccess: string | null;
  lastSuccess: string | null;
  lastFailure: string | null;
  lastFailureCause: string | null;
}

export interface TaskRecord {
  readonly id: string;
  readonly instanceId: string;
  readonly appId: string;
  readonly host: string;
  readonly port: number;
  /** Its ports at indexes 1, 2, ... (from the spec's morePorts); empty for one port. */
  readonly morePorts: readonly number[];
  readonly slaveId: string;
  readonly version: string;
  /** Mutable only so tests can backdate it (setStartedAt). */
  stagedAt: string;
  /** null for a virtual task (the app has backendPorts). */
  readonly server: TaskServer | null;
  state: MesosTaskState;
  startedAt: string | null;
  /** null: no results (no checks yet, or dropped as after a leader failover). */
  health: HealthRecord | null;
  /** What the next health check finds: startHealthy at launch, then the last setHealth(true|false). */
  checkOutcome: boolean;
}

export interface AppRecord {
  spec: NormalizedAppSpec;
  version: string;
  lastConfigChangeAt: string;
  lastScalingAt: string;
  readonly servicePort: number;
  /** Ids of deployments in flight for this app. */
  readonly deployments: Set<string>;
  /** Insertion order is launch order, so the last entries are the newest tasks. */
  readonly tasks: Map<string, TaskRecord>;
  /** Tasks whose server is starting: they count towards `instances` but are not listed yet. */
  launching: number;
  /** Set once a removal started: no task may launch for this record any more. */
  removing: boolean;
  /** Tasks launched so far for this record (picks a virtual task's backend port). */
  launched: number;
  /**
   * The app's JSON as `/v2/apps` lists it, with and without tasks, rendered on demand and kept until
   * the app or one of its tasks changes. Whoever mutates the record or its tasks calls invalidateRendering().
   */
  rendered: RenderedApp;
}

/** UTF-8 JSON, sent as is (never written to once cached). */
export interface RenderedApp {
  withTasks: Buffer | null;
  withoutTasks: Buffer | null;
}

/** Drops the app's cached JSON; call after any change to the app record or one of its tasks. */
export function invalidateRendering(app: AppRecord): void {
  app.rendered.withTasks = null;
  app.rendered.withoutTasks = null;
}

export interface NormalizedAppSpec {
  id: string;
  instances: number;
  labels: Record<string, string>;
  healthChecks: Array<Record<string, unknown>>;
  startHealthy: boolean;
  firstHealthyAfterMs: number;
  taskKillGracePeriodSeconds: number;
  killLatencyMs: number;
  extra: Record<string, unknown>;
  /** undefined: tasks run real servers. */
  backendPorts: number[] | undefined;
  /** Port indexes 1, 2, ...: each a non-empty list of ports. */
  morePorts: number[][];
}

/** "/web/" or "web" → "/web", like Marathon's PathId.toRootPath. */
export function normalizeAppId(id: string): string {
  const trimmed = id.replace(/^\/+|\/+$/g, '');
  return `/${trimmed}`;
}

/** "/tools/docker/registry" → "tools_docker_registry", the prefix of Marathon task ids. */
export function taskIdPrefix(appId: string): string {
  return normalizeAppId(appId).slice(1).replace(/\//g, '_');
}

export function normalizeSpec(spec: SimAppSpec): NormalizedAppSpec {
  if (!Number.isInteger(spec.instances) || spec.instances < 0) {
    throw new Error(`instances must be a non-negative integer, got ${spec.instances}`);
  }
  const firstHealthyAfterMs = spec.firstHealthyAfterMs ?? 0;
  if (!Number.isFinite(firstHealthyAfterMs) || firstHealthyAfterMs < 0) {
    throw new Error(`firstHealthyAfterMs must be a non-negative number, got ${spec.firstHealthyAfterMs}`);
  }
  return {
    id: normalizeAppId(spec.id),
    instances: spec.instances,
    labels: definedEntries(spec.labels ?? {}),
    healthChecks: (spec.healthChecks ?? []).map((check) => ({ ...check })),
    startHealthy: spec.startHealthy ?? true,
    firstHealthyAfterMs,
    taskKillGracePeriodSeconds: spec.taskKillGracePeriodSeconds ?? 0,
    killLatencyMs: spec.killLatencyMs ?? 0,
    extra: { ...(spec.extra ?? {}) },
    backendPorts: normalizeBackendPorts(spec.backendPorts),
    morePorts: (spec.morePorts ?? []).map((ports) => normalizeBackendPorts(ports)!),
  };
}

function normalizeBackendPorts(ports: number[] | undefined): number[] | undefined {
  if (ports === undefined) return undefined;
  const valid = Array.isArray(ports) && ports.length > 0 && ports.every((port) => Number.isInteger(port) && port > 0 && port < 65536);
  if (!valid) throw new Error(`backendPorts must be a non-empty array of TCP ports, got ${JSON.stringify(ports)}`);
  return [...ports];
}

function definedEntries(record: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** The ports at indexes 1, 2, ... of the n-th task launched for the app. */
export function morePortsOf(spec: NormalizedAppSpec, n: number): readonly number[] {
  return spec.morePorts.length === 0 ? NO_MORE_PORTS : spec.morePorts.map((ports) => ports[n % ports.length]!);
}

/** Shared by every one-port task (bulk loads create 100,000 of them). */
const NO_MORE_PORTS: readonly number[] = Object.freeze([]);

export function isoNow(): string {
  return new Date().toISOString();
}

/** Tasks that still count towards `instances`: a killing task is on its way out. */
export function activeTasks(app: AppRecord): TaskRecord[] {
  return [...app.tasks.values()].filter((task) => task.state !== 'TASK_KILLING');
}

export function toSimTask(task: TaskRecord): SimTask {
  return {
    id: task.id,
    appId: task.appId,
    host: task.host,
    port: task.port,
    ports: [task.port, ...task.morePorts],
    state: task.state,
    startedAt: task.startedAt,
    healthy: task.health === null ? null : task.health.alive,
  };
}
