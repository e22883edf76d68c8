/**
 * Judges one Marathon app: its labels, its tasks' endpoints and lifecycle
 * verdicts, and the version of a logical app it contributes. Pure.
 */
import { LABEL, readRoutingLabels, SERVICE_PORT, type LabelsResult, type RoutingLabels } from './labels.js';
import { PORT_LABEL_PREFIX, portAppKey, readPortLabels } from './port-labels.js';
import { isIpAddress, taskEndpoint } from './endpoint.js';
import { groupSelected } from './groups.js';
import { labelsOf } from './label-source.js';
import type { DeploymentMark } from './zdd-merge.js';
import type { RouteSettings } from './route-settings.js';
import { isActiveTask, judgeTask, type RememberedHealth } from './lifecycle.js';
import type { InputProblem, MarathonApp } from './marathon-types.js';
import type { Backend, BackendStatus, RoutingInput } from './routing-table.js';

export interface VersionCandidate {
  readonly appKey: string;
  readonly version: string;
  readonly marathonAppId: string;
  readonly vhosts: readonly string[];
  /** edgeroute.tcpPort resolved to a port; null: none. */
  readonly tcpPort: number | null;
  /** edgeroute.tcpBind: the one address of the TCP port; null: the node's TCP listen hosts. */
  readonly tcpBind: string | null;
  readonly paths: readonly string[];
  readonly settings: RouteSettings | null;
  readonly backends: readonly Backend[];
  /** Every active task with its state and reason, judged when asked (a hundred thousand are not needed on every sync). */
  readonly statuses: () => BackendStatus[];
  /** A colour of a marathon-lb blue/green deployment (zdd): merged with the other colour into one version. */
  readonly deployment?: DeploymentMark;
}

/** Everything judging one Marathon app yields; reusable while the app object, config and host addresses are the same. */
export interface JudgedApp {
  /** One per routed port: the app's own (edgeroute.portIndex), then each edgeroute.port.N. */
  readonly candidates: readonly VersionCandidate[];
  readonly problems: readonly InputProblem[];
  readonly observations: ReadonlyArray<readonly [string, RememberedHealth]>;
  readonly nextChangeAt: number | null;
  /** False when the verdicts depend on the clock or on remembered health. */
  readonly reusable: boolean;
  /** Host names looked up, with what they resolved to. */
  readonly hostsUsed: ReadonlyArray<readonly [string, string | undefined]>;
}

export function sameHosts(used: JudgedApp['hostsUsed'], hostAddresses: ReadonlyMap<string, string>): boolean {
  return used.every(([name, address]) => hostAddresses.get(name) === address);
}

export function judgeMarathonApp(app: MarathonApp, input: RoutingInput): JudgedApp {
  const problems: InputProblem[] = [];
  const { labels: source, deployment } = labelsOf(app, input.config, problems);
  const main = readRoutingLabels(source);
  const ports: Array<{ key: (appKey: string) => string; result: LabelsResult; what: string }> = [{ key: (k) => k, result: main, what: '' }];
  if (Object.keys(source).some((k) => k.startsWith(PORT_LABEL_PREFIX))) {
    const mainIndex = main.ok && main.routed ? main.value.portIndex : readPortIndex(source);
    for (const port of readPortLabels(source, mainIndex)) ports.push({ key: (k) => portAppKey(k, port.index), result: port.result, what: port.index < 0 ? '' : `port index ${port.index} ` });
  }
  const candidates: VersionCandidate[] = [];
  // One routed port (nearly every app): its list as it is. More ports judge the same tasks again: once each.
  let observations: ReadonlyArray<readonly [string, RememberedHealth]> = [];
  let merged: Map<string, RememberedHealth> | null = null;
  const hostsUsed: Array<readonly [string, string | undefined]> = [];
  let nextChangeAt: number | null = null;
  let reusable = true;
  for (const port of ports) {
    const labels = port.result;
    if (!labels.ok) {
      problems.push({ appId: app.id, message: `${port.what}skipped: ${labels.message}` });
      continue;
    }
    if (!labels.routed || !groupSelected(input.config.group, labels.value.groups)) continue;
    const appKey = port.key(labels.value.app ?? app.id);
    let tcpPort: number | null = null;
    if (labels.value.tcpPort === SERVICE_PORT) {
      const servicePort = app.servicePorts?.[labels.value.portIndex] ?? null;
      if (servicePort === null) {
        problems.push({ appId: app.id, message: `${port.what}skipped: ${LABEL.tcpPort}=${SERVICE_PORT} but the app declares no service port at ${LABEL.portIndex}=${labels.value.portIndex}` });
        continue;
      }
      tcpPort = servicePort;
    } else tcpPort = labels.value.tcpPort ?? null;
    const judged = judgeApp(app, appKey, labels.value, input, problems);
    if (observations.length === 0) observations = judged.observations;
    else if (judged.observations.length > 0) {
      merged ??= new Map(observations);
      for (const [task, health] of judged.observations) merged.set(task, health);
    }
    hostsUsed.push(...judged.hostsUsed);
    reusable &&= judged.reusable;
    if (judged.nextChangeAt !== null) nextChangeAt = nextChangeAt === null ? judged.nextChangeAt : Math.min(nextChangeAt, judged.nextChangeAt);
    if (judged.backends === null) continue;
    candidates.push({
      appKey,
      version: labels.value.version,
      marathonAppId: app.id,
      vhosts: labels.value.vhosts,
      tcpPort,
      tcpBind: labels.value.tcpBind ?? null,
      paths: labels.value.paths,
      settings: labels.value.settings,
      backends: judged.backends,
      statuses: statusesLater(app, appKey, labels.value, input),
      ...(deployment ? { deployment: { ...deployment, instances: app.instances, taskIds: app.tasks.filter(isActiveTask).map((t) => t.id).sort(compare) } } : {}),
    });
  }
  return { candidates, problems, observations: merged ? [...merged] : observations, nextChangeAt, reusable, hostsUsed };
}

/** edgeroute.portIndex when the app's own port is not routed (only its edgeroute.port.N.* are). */
function readPortIndex(labels: Readonly<Record<string, string>>): number {
  const raw = labels[LABEL.portIndex]?.trim() ?? '0';
  return /^\d+$/.test(raw) ? Number(raw) : 0;
}

/** Judges every active task of one Marathon app; backends null when the app cannot be routed at all (no usable port). */
/** Captures only what judging needs (not the whole snapshot), so a kept candidate holds little. */
function statusesLater(app: MarathonApp, appKey: string, labels: RoutingLabels, input: RoutingInput): () => BackendStatus[] {
  const { config, hostAddresses, healthMemory, now, drains } = input;
  const context = { snapshot: { apps: [] }, config, hostAddresses, healthMemory, now, drains };
  return () => judgeApp(app, appKey, labels, context, [], true).statuses;
}

function judgeApp(
  app: MarathonApp,
  appKey: string,
  labels: RoutingLabels,
  input: RoutingInput,
  problems: InputProblem[],
  withStatuses = false,
): {
  backends: Backend[] | null;
  statuses: BackendStatus[];
  observations: Array<readonly [string, RememberedHealth]>;
  nextChangeAt: number | null;
  reusable: boolean;
  hostsUsed: Array<readonly [string, string | undefined]>;
} {
  const { portIndex } = labels;
  if (app.ports.length > 0 && portIndex >= app.ports.length) {
    problems.push({ appId: app.id, message: `skipped: ${LABEL.portIndex}=${portIndex} but the app declares ${app.ports.length} port(s)` });
    return { backends: null, statuses: [], observations: [], nextChangeAt: null, reusable: true, hostsUsed: [] };
  }
  const observations: Array<readonly [string, RememberedHealth]> = [];
  const hostsUsed: Array<readonly [string, string | undefined]> = [];
  let nextChangeAt: number | null = null;
  let reusable = true;
  const settings = {
    publishDelayMs: 1000 * (labels.publishDelaySeconds ?? input.config.defaultPublishDelaySeconds),
    warmupMs: 1000 * (labels.warmupSeconds ?? input.config.defaultWarmupSeconds),
    warmupAggression: input.config.warmupAggression,
    weight: labels.weight,
    hasHealthChecks: app.healthCheckCount > 0,
  };
  const backends: Backend[] = [];
  const statuses: BackendStatus[] = [];
  const unusable: string[] = [];
  let running = 0;
  for (const task of [...app.tasks].filter(isActiveTask).sort((a, b) => compare(a.id, b.id))) {
    const endpoint = taskEndpoint(app, task, portIndex);
    let address: string | undefined;
    if (endpoint.ok && isIpAddress(endpoint.host)) address = endpoint.host;
    else if (endpoint.ok) {
      address = input.hostAddresses.get(endpoint.host);
      hostsUsed.push([endpoint.host, address]);
    }
    if (task.state === 'TASK_RUNNING') {
      running++;
      if (!endpoint.ok) unusable.push(endpoint.message);
      else if (address === undefined) unusable.push(`task ${task.id}: host ${endpoint.host} has no known address`);
    }
    const remembered = input.healthMemory.get(task.id);
    const verdict = judgeTask(task, settings, remembered, input.now, input.drains?.get(task.id));
    if (verdict.observation) observations.push([task.id, verdict.observation]);
    // Verdicts that lean on the clock or on memory are judged afresh every time.
    if (verdict.changesAt !== null || (settings.hasHealthChecks && task.state === 'TASK_RUNNING' && task.healthCheckResults.length === 0)) reusable = false;
    const routable = endpoint.ok && address !== undefined;
    if (routable && verdict.changesAt !== null) {
      const next = verdict.state === 'warming' ? Math.min(verdict.changesAt, input.now + input.config.warmupStepMs) : verdict.changesAt;
      nextChangeAt = nextChangeAt === null ? next : Math.min(nextChangeAt, next);
    }
    if (withStatuses) statuses.push({
      app: appKey,
      version: labels.version,
      marathonAppId: app.id,
      taskId: task.id,
      address: address ?? null,
      port: endpoint.ok ? endpoint.port : null,
      state: verdict.state,
      reason: routable ? verdict.reason : `not routable: ${unusable[unusable.length - 1] ?? 'no address'}`,
      weight: routable ? verdict.weight : 0,
      baseWeight: labels.weight,
      publishedAt: verdict.publishedAt,
    });
    if (endpoint.ok && address !== undefined && verdict.weight > 0) backends.push({ id: task.id, address, port: endpoint.port, weight: verdict.weight });
  }
  if (running > 0 && unusable.length === running) {
    problems.push({ appId: app.id, message: `skipped: no usable port (${unusable[0]})` });
    return { backends: null, statuses: [], observations, nextChangeAt: null, reusable, hostsUsed };
  }
  if (unusable.length > 0) {
    problems.push({ appId: app.id, message: `${unusable.length} task(s) not routed: ${unusable.join('; ')}` });
  }
  return { backends, statuses, observations, nextChangeAt, reusable, hostsUsed };
}


function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
