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

/** Everything judging one Marathon app yields; reusable while the app object, config and host addresses are the same. */
interface JudgedApp {
  readonly candidate: VersionCandidate | null;
  readonly problems: readonly InputProblem[];
  readonly observations: ReadonlyArray<readonly [string, RememberedHealth]>;
  readonly nextChangeAt: number | null;
  /** False when the verdicts depend on the clock or on remembered health. */
  readonly reusable: boolean;
  /** Host names looked up, with what they resolved to. */
  readonly hostsUsed: ReadonlyArray<readonly [string, string | undefined]>;
}

/**
 * Remembers per-app results between computations so that, at 10,000 apps, a
 * change to one app costs work for that app only. Purely a cache: the result
 * is the same with or without it. The caller keeps the Marathon app objects
 * of unchanged apps identical between computations.
 */
export class RoutingMemo {
  config: RoutingConfig | null = null;
  judged = new WeakMap<MarathonApp, JudgedApp>();
  routes = new Map<string, { parts: readonly VersionCandidate[]; vhosts: readonly string[]; route: AppRoute }>();
}

export function computeRoutingTable(input: RoutingInput, memo: RoutingMemo = new RoutingMemo()): RoutingResult {
  if (memo.config === null || !sameConfig(memo.config, input.config)) {
    memo.config = input.config;
    memo.judged = new WeakMap();
    memo.routes.clear();
  }
  const problems: InputProblem[] = [];
  const candidates: VersionCandidate[] = [];
  const observations = new Map<string, RememberedHealth>();
  let nextChangeAt: number | null = null;
  const apps = [...input.snapshot.apps].sort((a, b) => compare(a.id, b.id));
  for (const app of apps) {
    let judged = memo.judged.get(app);
    if (!judged || !judged.reusable || !sameHosts(judged.hostsUsed, input.hostAddresses)) {
      judged = judgeMarathonApp(app, input);
      memo.judged.set(app, judged);
      for (const [taskId, health] of judged.observations) observations.set(taskId, health);
    }
    if (judged.candidate !== null) candidates.push(judged.candidate);
    for (const problem of judged.problems) problems.push(problem);
    if (judged.nextChangeAt !== null) nextChangeAt = nextChangeAt === null ? judged.nextChangeAt : Math.min(nextChangeAt, judged.nextChangeAt);
  }
  const routes = groupIntoApps(candidates, problems, memo);
  let backends: readonly BackendStatus[] | null = null;
  return {
    table: tableOf(routes),
    problems,
    // Built on demand: a hundred thousand entries are not needed on every sync.
    get backends() {
      if (backends === null) {
        const routed = new Set(routes.flatMap((r) => Object.values(r.versions).map((v) => v.marathonAppId)));
        backends = candidates.filter((c) => routed.has(c.marathonAppId)).flatMap((c) => c.statuses);
      }
      return backends;
    },
    observations,
    nextChangeAt,
  };
}

function sameConfig(a: RoutingConfig, b: RoutingConfig): boolean {
  return (Object.keys(b) as Array<keyof RoutingConfig>).every((key) => a[key] === b[key]);
}

function sameHosts(used: JudgedApp['hostsUsed'], hostAddresses: ReadonlyMap<string, string>): boolean {
  return used.every(([name, address]) => hostAddresses.get(name) === address);
}

function judgeMarathonApp(app: MarathonApp, input: RoutingInput): JudgedApp {
  const problems: InputProblem[] = [];
  const unrouted: JudgedApp = { candidate: null, problems, observations: [], nextChangeAt: null, reusable: true, hostsUsed: [] };
  const labels = readRoutingLabels(app.labels);
  if (!labels.ok) {
    problems.push({ appId: app.id, message: `skipped: ${labels.message}` });
    return unrouted;
  }
  if (!labels.routed || labels.value.group !== input.config.group) return unrouted;
  const appKey = labels.value.app ?? app.id;
  const judged = judgeApp(app, appKey, labels.value, input, problems);
  const candidate: VersionCandidate | null =
    judged.backends === null
      ? null
      : { appKey, version: labels.value.version, marathonAppId: app.id, vhosts: labels.value.vhosts, backends: judged.backends, statuses: judged.statuses };
  return { candidate, problems, observations: judged.observations, nextChangeAt: judged.nextChangeAt, reusable: judged.reusable, hostsUsed: judged.hostsUsed };
}

/** Judges every active task of one Marathon app; backends null when the app cannot be routed at all (no usable port). */
function judgeApp(
  app: MarathonApp,
  appKey: string,
  labels: RoutingLabels,
  input: RoutingInput,
  problems: InputProblem[],
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
    const verdict = judgeTask(task, settings, remembered, input.now);
    if (verdict.observation) observations.push([task.id, verdict.observation]);
    // Verdicts that lean on the clock or on memory are judged afresh every time.
    if (verdict.changesAt !== null || (settings.hasHealthChecks && task.state === 'TASK_RUNNING' && task.healthCheckResults.length === 0)) reusable = false;
    const routable = endpoint.ok && address !== undefined;
    if (routable && verdict.changesAt !== null) {
      const next = verdict.state === 'warming' ? Math.min(verdict.changesAt, input.now + input.config.warmupStepMs) : verdict.changesAt;
      nextChangeAt = nextChangeAt === null ? next : Math.min(nextChangeAt, next);
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

function groupIntoApps(candidates: readonly VersionCandidate[], problems: InputProblem[], memo: RoutingMemo): AppRoute[] {
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
  const previous = memo.routes;
  memo.routes = new Map();
  for (const appKey of [...byApp.keys()].sort(compare)) {
    const versions = byApp.get(appKey) ?? [];
    const vhosts = claimVhosts(appKey, versions, owner, problems);
    if (vhosts.length === 0) continue;
    const known = previous.get(appKey);
    const route = known && sameParts(known.parts, versions) && sameStrings(known.vhosts, vhosts) ? known.route : appRoute(appKey, vhosts, versions);
    memo.routes.set(appKey, { parts: versions, vhosts, route });
    routes.push(route);
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

function sameParts(a: readonly VersionCandidate[], b: readonly VersionCandidate[]): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
