import type { AppRecord, HealthRecord, TaskRecord } from './sim-model.js';

/** Marathon's REST JSON for apps, tasks and health results, built from the simulator's records. */

type Json = Record<string, unknown>;

const HTTP_LIKE_PROTOCOLS = new Set(['HTTP', 'HTTPS', 'MESOS_HTTP', 'MESOS_HTTPS']);

/** Fills in the defaults Marathon echoes back for a health check definition. */
export function normalizeHealthCheck(check: Json): Json {
  const protocol = typeof check.protocol === 'string' ? check.protocol : 'HTTP';
  const normalized: Json = {
    gracePeriodSeconds: 300,
    intervalSeconds: 60,
    maxConsecutiveFailures: 3,
    timeoutSeconds: 20,
    delaySeconds: 15,
    protocol,
  };
  if (HTTP_LIKE_PROTOCOLS.has(protocol)) Object.assign(normalized, { path: '/', ignoreHttp1xx: false });
  const namesAPort = 'port' in check || 'portName' in check;
  if (protocol !== 'COMMAND' && !namesAPort) normalized.portIndex = 0;
  return { ...normalized, ...check };
}

export function defaultPortDefinitions(servicePort: number): Json[] {
  return [{ port: servicePort, protocol: 'tcp', name: 'http', labels: {} }];
}

/** The app definition alone, as carried by `api_post_event`. */
export function renderAppDefinition(app: AppRecord): Json {
  const { spec } = app;
  const definition: Json = {
    id: spec.id,
    backoffFactor: 1.15,
    backoffSeconds: 1,
    cmd: 'edgeroute-sim-task',
    constraints: [],
    container: null,
    cpus: 0.1,
    dependencies: [],
    disk: 0,
    env: {},
    executor: '',
    fetch: [],
    healthChecks: spec.healthChecks.map(normalizeHealthCheck),
    instances: spec.instances,
    labels: { ...spec.labels },
    maxLaunchDelaySeconds: 3600,
    mem: 32,
    gpus: 0,
    networks: [{ mode: 'host' }],
    portDefinitions: defaultPortDefinitions(app.servicePort),
    requirePorts: false,
    upgradeStrategy: { maximumOverCapacity: 1, minimumHealthCapacity: 1 },
    user: null,
    version: app.version,
    versionInfo: { lastScalingAt: app.lastScalingAt, lastConfigChangeAt: app.lastConfigChangeAt },
    killSelection: 'YOUNGEST_FIRST',
    unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 0 },
  };
  if (spec.taskKillGracePeriodSeconds > 0) definition.taskKillGracePeriodSeconds = spec.taskKillGracePeriodSeconds;
  Object.assign(definition, spec.extra);
  definition.ports = servicePorts(definition);
  return definition;
}

/** The app as `GET /v2/apps` shows it: definition, counts, deployments, and tasks when embedded. */
export function renderApp(app: AppRecord, embedTasks: boolean): Json {
  const definition = renderAppDefinition(app);
  const rendered: Json = {
    ...definition,
    ...taskCounts(app),
    deployments: [...app.deployments].map((id) => ({ id })),
  };
  if (embedTasks) {
    const ports = servicePorts(definition);
    rendered.tasks = [...app.tasks.values()].map((task) => renderTask(task, app, ports));
  }
  return rendered;
}

/**
 * `JSON.stringify(renderApp(app, embedTasks))` as UTF-8, cached on the record until invalidateRendering():
 * listing 10,000 unchanged apps re-serializes none of them, and the buffers go to the socket as they are.
 */
export function renderAppJson(app: AppRecord, embedTasks: boolean): Buffer {
  const { rendered } = app;
  if (embedTasks) return (rendered.withTasks ??= Buffer.from(JSON.stringify(renderApp(app, true))));
  return (rendered.withoutTasks ??= Buffer.from(JSON.stringify(renderApp(app, false))));
}

/** The app's service ports, as every task of the app lists them. */
export function appServicePorts(app: AppRecord): number[] {
  return servicePorts(renderAppDefinition(app));
}

/** The modern task shape (`state`, `servicePorts`, `ipAddresses`, ...). */
export function renderTask(task: TaskRecord, app: AppRecord, taskServicePorts = appServicePorts(app)): Json {
  const rendered: Json = {
    appId: task.appId,
    host: task.host,
    id: task.id,
    ipAddresses: [{ ipAddress: task.host, protocol: 'IPv4' }],
    ports: [task.port, ...task.morePorts],
    servicePorts: taskServicePorts,
    slaveId: task.slaveId,
    state: task.state,
    stagedAt: task.stagedAt,
    startedAt: task.startedAt,
    version: task.version,
    localVolumes: [],
    role: '*',
  };
  // Marathon leaves the key out when a task has no results (no checks yet, or just after a failover).
  if (app.spec.healthChecks.length > 0 && task.health !== null) {
    rendered.healthCheckResults = renderHealthResults(task, app.spec.healthChecks.length);
  }
  return rendered;
}

/** One result per app health check, each naming both the instance and the task. */
export function renderHealthResults(task: TaskRecord, checkCount: number): Json[] {
  const { health } = task;
  if (health === null) return [];
  return Array.from({ length: checkCount }, () => renderHealth(health, task));
}

function renderHealth(health: HealthRecord, task: TaskRecord): Json {
  return {
    alive: health.alive,
    consecutiveFailures: health.consecutiveFailures,
    firstSuccess: health.firstSuccess,
    lastFailure: health.lastFailure,
    lastSuccess: health.lastSuccess,
    lastFailureCause: health.lastFailureCause,
    instanceId: task.instanceId,
    taskId: task.id,
  };
}

function taskCounts(app: AppRecord): Json {
  const hasChecks = app.spec.healthChecks.length > 0;
  let staged = 0;
  let running = 0;
  let healthy = 0;
  let unhealthy = 0;
  for (const task of app.tasks.values()) {
    if (task.state === 'TASK_STAGING') staged += 1;
    if (task.state !== 'TASK_RUNNING') continue;
    running += 1;
    if (hasChecks && task.health?.alive === true) healthy += 1;
    if (hasChecks && task.health?.alive === false) unhealthy += 1;
  }
  return { tasksStaged: staged, tasksRunning: running, tasksHealthy: healthy, tasksUnhealthy: unhealthy };
}

function servicePorts(definition: Json): number[] {
  const definitions = definition.portDefinitions;
  if (!Array.isArray(definitions)) return [];
  return definitions
    .map((entry: unknown) => (entry !== null && typeof entry === 'object' ? (entry as Json).port : undefined))
    .filter((port): port is number => typeof port === 'number');
}

/** Who answers `GET /v2/info`: one instance of a Marathon cluster. */
export interface InfoView {
  /** "HOST:PORT" of the current leader, null when there is none. */
  leader: string | null;
  /** True only on the leader. */
  elected: boolean;
  frameworkId: string;
  /** This instance's host and port. */
  host: string;
  port: number;
  tls: boolean;
}

/** `GET /v2/info` of a Marathon 1.10 instance (HA mode). */
export function renderInfo(view: InfoView): Json {
  const { leader, elected, frameworkId, host, port, tls } = view;
  return {
    name: 'marathon',
    version: '1.10.17',
    buildref: '4b4a2ae0f3de53d6d2a5bd4fbcc02f32d3f2b5a3',
    elected,
    leader,
    frameworkId,
    marathon_config: {
      master: 'zk://127.0.0.1:2181/mesos',
      failover_timeout: 604800,
      framework_name: 'marathon',
      ha: true,
      checkpoint: true,
      local_port_min: 10000,
      local_port_max: 20000,
      executor: '//cmd',
      hostname: host,
      webui_url: null,
      mesos_role: null,
      task_launch_timeout: 300000,
      task_reservation_timeout: 20000,
      reconciliation_initial_delay: 15000,
      reconciliation_interval: 600000,
      mesos_user: 'root',
      leader_proxy_connection_timeout_ms: 5000,
      leader_proxy_read_timeout_ms: 10000,
      features: ['task_killing'],
      mesos_leader_ui_url: 'http://127.0.0.1:5050/',
    },
    zookeeper_config: {
      zk: 'zk://127.0.0.1:2181/marathon',
      zk_timeout: 10000,
      zk_connection_timeout: 10000,
      zk_session_timeout: 10000,
      zk_max_versions: 50,
    },
    http_config: tls ? { http_port: 8080, https_port: port } : { http_port: port, https_port: 8443 },
  };
}
