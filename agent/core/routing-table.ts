/**
 * The routing table: a pure function of the Marathon snapshot, the resolved
 * host addresses and the agent's config. Same input, deep-equal output.
 */
import { DEFAULT_VERSION, LABEL, readRoutingLabels, type RoutingLabels } from './labels.js';
import { isIpAddress, taskEndpoint } from './endpoint.js';
import { canonicalJson, hashString } from './hash.js';
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
}

export interface RoutingInput {
  readonly snapshot: MarathonSnapshot;
  readonly config: RoutingConfig;
  /** Host name → IP address, for tasks whose `host` is a name (nginx peers must be IPs). */
  readonly hostAddresses: ReadonlyMap<string, string>;
}

export interface RoutingResult {
  readonly table: RoutingTable;
  readonly problems: readonly InputProblem[];
}

export const EMPTY_TABLE: RoutingTable = { version: hashString(''), apps: {} };

interface VersionCandidate {
  readonly appKey: string;
  readonly version: string;
  readonly marathonAppId: string;
  readonly vhosts: readonly string[];
  readonly backends: readonly Backend[];
}

export function computeRoutingTable(input: RoutingInput): RoutingResult {
  const problems: InputProblem[] = [];
  const candidates: VersionCandidate[] = [];
  const apps = [...input.snapshot.apps].sort((a, b) => compare(a.id, b.id));
  for (const app of apps) {
    const candidate = versionCandidate(app, input, problems);
    if (candidate !== null) candidates.push(candidate);
  }
  const routes = groupIntoApps(candidates, problems);
  return { table: tableOf(routes), problems };
}

function versionCandidate(app: MarathonApp, input: RoutingInput, problems: InputProblem[]): VersionCandidate | null {
  const labels = readRoutingLabels(app.labels);
  if (!labels.ok) {
    problems.push({ appId: app.id, message: `skipped: ${labels.message}` });
    return null;
  }
  if (!labels.routed || labels.value.group !== input.config.group) return null;
  const backends = backendsOf(app, labels.value, input.hostAddresses, problems);
  if (backends === null) return null;
  return {
    appKey: labels.value.app ?? app.id,
    version: labels.value.version,
    marathonAppId: app.id,
    vhosts: labels.value.vhosts,
    backends,
  };
}

/** null when the app cannot be routed at all (no port at its port index). */
function backendsOf(
  app: MarathonApp,
  labels: RoutingLabels,
  hostAddresses: ReadonlyMap<string, string>,
  problems: InputProblem[],
): Backend[] | null {
  const { portIndex } = labels;
  if (app.ports.length > 0 && portIndex >= app.ports.length) {
    problems.push({ appId: app.id, message: `skipped: ${LABEL.portIndex}=${portIndex} but the app declares ${app.ports.length} port(s)` });
    return null;
  }
  const running = app.tasks.filter((t) => t.state === 'TASK_RUNNING');
  const backends: Backend[] = [];
  const unusable: string[] = [];
  for (const task of running) {
    const endpoint = taskEndpoint(app, task, portIndex);
    if (!endpoint.ok) {
      unusable.push(endpoint.message);
      continue;
    }
    const address = isIpAddress(endpoint.host) ? endpoint.host : hostAddresses.get(endpoint.host);
    if (address === undefined) {
      unusable.push(`task ${task.id}: host ${endpoint.host} has no known address`);
      continue;
    }
    backends.push({ id: task.id, address, port: endpoint.port, weight: labels.weight });
  }
  if (running.length > 0 && backends.length === 0) {
    problems.push({ appId: app.id, message: `skipped: no usable port (${unusable[0]})` });
    return null;
  }
  if (unusable.length > 0) {
    problems.push({ appId: app.id, message: `${unusable.length} task(s) not routed: ${unusable.join('; ')}` });
  }
  return backends.sort((a, b) => compare(a.id, b.id));
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
