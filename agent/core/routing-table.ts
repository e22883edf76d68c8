/**
 * The routing table: a pure function of the Marathon snapshot, the resolved
 * host addresses and the agent's config. Same input, deep-equal output.
 */
import { DEFAULT_VERSION, LABEL, readRoutingLabels, type RoutingLabels } from './labels.js';
import { isIpAddress, taskEndpoint } from './endpoint.js';
import { canonicalJson, hashString } from './hash.js';
import { isActiveTask, judgeTask, type BackendState, type RememberedHealth } from './lifecycle.js';
import type { InputProblem, MarathonApp, MarathonSnapshot } from './marathon-types.js';

export interface Backend {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

export interface VersionRoute {
  readonly marathonAppId: string;
  readonly backends: readonly Backend[];
}

export interface AppRoute {
  readonly id: string;
  readonly vhosts: readonly string[];
  readonly defaultVersion: string;
  readonly versions: Readonly<Record<string, VersionRoute>>;
  /** Content hash of this app's route; the plugin rebuilds an app only when it changes. */
  readonly hash: string;
}

export interface RoutingTable {
  /** Content hash of the whole table. */
  readonly version: string;
  readonly apps: Readonly<Record<string, AppRoute>>;
}

export interface RoutingConfig {
  /** Route only apps labelled with this group; null routes only apps without a group. */
  readonly group: string | null;
  /** For apps without edgeroute.publishDelaySeconds. */
  readonly defaultPublishDelaySeconds: number;
  /** For apps without edgeroute.warmupSeconds. */
  readonly defaultWarmupSeconds: number;
  readonly warmupAggression: number;
  /** While a backend warms up, its weight changes at most this often. */
  readonly warmupStepMs: number;
}

export const DEFAULT_ROUTING_CONFIG: RoutingConfig = {
  group: null,
  defaultPublishDelaySeconds: 0,
  defaultWarmupSeconds: 0,
  warmupAggression: 1,
  warmupStepMs: 1000,
};

export interface RoutingInput {
  readonly snapshot: MarathonSnapshot;
  readonly config: RoutingConfig;
  /** Host name → IP address, for tasks whose `host` is a name (nginx peers must be IPs). */
  readonly hostAddresses: ReadonlyMap<string, string>;
  /** Remembered health by task id, for tasks Marathon reports no health result for. */
  readonly healthMemory: ReadonlyMap<string, RememberedHealth>;
  /** Milliseconds since the epoch. */
  readonly now: number;
}

/** One task of a routed app, routed or not, and why. */
export interface BackendStatus {
  readonly app: string;
  readonly version: string;
  readonly marathonAppId: string;
  readonly taskId: string;
  readonly address: string | null;
  readonly port: number | null;
  readonly state: BackendState;
  readonly reason: string;
  readonly weight: number;
  readonly baseWeight: number;
  readonly publishedAt: number | null;
}

export interface RoutingResult {
  readonly table: RoutingTable;
  readonly problems: readonly InputProblem[];
  readonly backends: readonly BackendStatus[];
  /** Health Marathon reported in this snapshot, to remember. */
  readonly observations: ReadonlyMap<string, RememberedHealth>;
  /** When the table changes by the clock alone (a delay ends, a warm-up steps); null if never. */
  readonly nextChangeAt: number | null;
}

export const EMPTY_TABLE: RoutingTable = { version: hashString(''), apps: {} };

interface VersionCandidate {
  readonly appKey: string;
  readonly version: string;
  readonly marathonAppId: string;
  readonly vhosts: readonly string[];
  readonly backends: readonly Backend[];
  readonly statuses: readonly BackendStatus[];
}

/** What judging an app's tasks adds besides backends. */
interface Judgement {
  readonly observations: Map<string, RememberedHealth>;
  nextChangeAt: number | null;
}

export function computeRoutingTable(input: RoutingInput): RoutingResult {
  const problems: InputProblem[] = [];
  const candidates: VersionCandidate[] = [];
  const judgement: Judgement = { observations: new Map(), nextChangeAt: null };
  const apps = [...input.snapshot.apps].sort((a, b) => compare(a.id, b.id));
  for (const app of apps) {
    const candidate = versionCandidate(app, input, problems, judgement);
    if (candidate !== null) candidates.push(candidate);
  }
  const routes = groupIntoApps(candidates, problems);
  const routed = new Set(routes.flatMap((r) => Object.values(r.versions).map((v) => v.marathonAppId)));
  return {
    table: tableOf(routes),
    problems,
    backends: candidates.filter((c) => routed.has(c.marathonAppId)).flatMap((c) => c.statuses),
    observations: judgement.observations,
    nextChangeAt: judgement.nextChangeAt,
  };
}

function versionCandidate(app: MarathonApp, input: RoutingInput, problems: InputProblem[], judgement: Judgement): VersionCandidate | null {
  const labels = readRoutingLabels(app.labels);
  if (!labels.ok) {
    problems.push({ appId: app.id, message: `skipped: ${labels.message}` });
    return null;
  }
  if (!labels.routed || labels.value.group !== input.config.group) return null;
  const appKey = labels.value.app ?? app.id;
  const judged = judgeApp(app, appKey, labels.value, input, problems, judgement);
  if (judged === null) return null;
  return {
    appKey,
    version: labels.value.version,
    marathonAppId: app.id,
    vhosts: labels.value.vhosts,
    backends: judged.backends,
    statuses: judged.statuses,
  };
}

/** Judges every active task of one Marathon app; null when the app cannot be routed at all (no usable port). */
function judgeApp(
  app: MarathonApp,
  appKey: string,
  labels: RoutingLabels,
  input: RoutingInput,
  problems: InputProblem[],
  judgement: Judgement,
): { backends: Backend[]; statuses: BackendStatus[] } | null {
  const { portIndex } = labels;
  if (app.ports.length > 0 && portIndex >= app.ports.length) {
    problems.push({ appId: app.id, message: `skipped: ${LABEL.portIndex}=${portIndex} but the app declares ${app.ports.length} port(s)` });
    return null;
  }
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
    const address = !endpoint.ok ? undefined : isIpAddress(endpoint.host) ? endpoint.host : input.hostAddresses.get(endpoint.host);
    if (task.state === 'TASK_RUNNING') {
      running++;
      if (!endpoint.ok) unusable.push(endpoint.message);
      else if (address === undefined) unusable.push(`task ${task.id}: host ${endpoint.host} has no known address`);
    }
    const verdict = judgeTask(task, settings, input.healthMemory.get(task.id), input.now);
    if (verdict.observation) judgement.observations.set(task.id, verdict.observation);
    const routable = endpoint.ok && address !== undefined;
    if (routable && verdict.changesAt !== null) {
      const next = verdict.state === 'warming' ? Math.min(verdict.changesAt, input.now + input.config.warmupStepMs) : verdict.changesAt;
      judgement.nextChangeAt = judgement.nextChangeAt === null ? next : Math.min(judgement.nextChangeAt, next);
    }
    statuses.push({
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
    if (routable && verdict.weight > 0) backends.push({ id: task.id, address, port: endpoint.port, weight: verdict.weight });
  }
  if (running > 0 && unusable.length === running) {
    problems.push({ appId: app.id, message: `skipped: no usable port (${unusable[0]})` });
    return null;
  }
  if (unusable.length > 0) {
    problems.push({ appId: app.id, message: `${unusable.length} task(s) not routed: ${unusable.join('; ')}` });
  }
  return { backends, statuses };
}

function groupIntoApps(candidates: readonly VersionCandidate[], problems: InputProblem[]): AppRoute[] {
  const byApp = new Map<string, VersionCandidate[]>();
  for (const candidate of candidates) {
    const versions = byApp.get(candidate.appKey) ?? [];
    const clash = versions.find((v) => v.version === candidate.version);
    if (clash) {
      problems.push({
        appId: candidate.marathonAppId,
        message: `skipped: version "${candidate.version}" of app "${candidate.appKey}" is already ${clash.marathonAppId}`,
      });
      continue;
    }
    versions.push(candidate);
    byApp.set(candidate.appKey, versions);
  }

  const owner = new Map<string, string>();
  const routes: AppRoute[] = [];
  for (const appKey of [...byApp.keys()].sort(compare)) {
    const versions = byApp.get(appKey) ?? [];
    const vhosts = claimVhosts(appKey, versions, owner, problems);
    if (vhosts.length === 0) continue;
    routes.push(appRoute(appKey, vhosts, versions));
  }
  return routes;
}

/** A host name belongs to the first app (by id) that asks for it. */
function claimVhosts(appKey: string, versions: readonly VersionCandidate[], owner: Map<string, string>, problems: InputProblem[]): string[] {
  const wanted = [...new Set(versions.flatMap((v) => v.vhosts))].sort(compare);
  const claimed: string[] = [];
  for (const vhost of wanted) {
    const holder = owner.get(vhost);
    if (holder !== undefined && holder !== appKey) {
      problems.push({ appId: versions[0]?.marathonAppId ?? appKey, message: `host ${vhost} is already routed to app ${holder}; not routed here` });
      continue;
    }
    owner.set(vhost, appKey);
    claimed.push(vhost);
  }
  return claimed;
}

function appRoute(appKey: string, vhosts: readonly string[], candidates: readonly VersionCandidate[]): AppRoute {
  const versions: Record<string, VersionRoute> = {};
  for (const c of [...candidates].sort((a, b) => compare(a.version, b.version))) {
    versions[c.version] = { marathonAppId: c.marathonAppId, backends: c.backends };
  }
  const defaultVersion = DEFAULT_VERSION in versions ? DEFAULT_VERSION : (Object.keys(versions)[0] ?? DEFAULT_VERSION);
  const route = { id: appKey, vhosts, defaultVersion, versions };
  return { ...route, hash: hashString(canonicalJson(route)) };
}

function tableOf(routes: readonly AppRoute[]): RoutingTable {
  const apps: Record<string, AppRoute> = {};
  for (const route of routes) apps[route.id] = route;
  return { version: hashString(routes.map((r) => `${r.id}=${r.hash}`).join('\n')), apps };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
