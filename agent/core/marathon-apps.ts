/**
 * Parses Marathon's `/v2/apps?embed=apps.tasks`, `/v2/apps/{id}` and `/v2/tasks`
 * answers into a MarathonSnapshot. One malformed app or task is reported and
 * skipped; it never hides the others (an app that is not even JSON makes the
 * whole listing malformed: see ListingParser).
 */
import type {
  HealthCheckSpec,
  HealthResult,
  InputProblem,
  MarathonApp,
  MarathonSnapshot,
  MarathonTask,
  NetworkMode,
  PortSpec,
} from './marathon-types.js';
import { MAX_APP_ID_LENGTH } from './marathon-types.js';
import { arrayOf, isObject, isPort, isWellFormedText, numberOr, stringOr, type JsonObject } from './json-guards.js';
import { ListingBatches } from './listing-batches.js';

export interface ParsedSnapshot {
  readonly snapshot: MarathonSnapshot;
  readonly problems: readonly InputProblem[];
}

/** The start of every error finish() throws. */
export const NOT_A_LISTING = 'Marathon answered malformed JSON, or a listing without an "apps" array';

type Result<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseAppsResponse(body: unknown): ParsedSnapshot {
  if (!isObject(body) || !Array.isArray(body.apps)) {
    return { snapshot: { apps: [] }, problems: [{ appId: null, message: 'apps listing has no "apps" array' }] };
  }
  return parseAppList(body.apps);
}

/**
 * Parses `GET /v2/apps?embed=apps.tasks` as it arrives, a few apps at a time
 * (ListingBatches), so the listing's text is never held whole. finish() throws when the text was
 * not a listing (malformed, truncated, or without an "apps" array): a sync
 * then fails and nginx keeps its table, rather than getting an empty one.
 * An app whose text is not JSON makes the whole text malformed too: Marathon
 * writes valid JSON, so the text was damaged, and where the damage ends is
 * unknown (a lost brace merges the next app into the broken one). Skipping
 * it would silently unroute its neighbours; refusing the listing keeps them.
 */
export class ListingParser {
  private readonly items = new ListingBatches();
  private readonly apps: MarathonApp[] = [];
  private readonly problems: InputProblem[] = [];

  push(text: string): void {
    for (const raw of this.items.push(text)) this.parseRaw(raw);
  }

  finish(): ParsedSnapshot {
    for (const raw of this.items.end()) this.parseRaw(raw);
    const complete = this.items.complete();
    if (this.items.malformedApp !== null) throw new Error(`${NOT_A_LISTING}: an app in the listing is not valid JSON (${this.items.malformedApp})`);
    if (!complete) throw new Error(NOT_A_LISTING);
    return { snapshot: { apps: this.apps }, problems: this.problems };
  }

  private parseRaw(raw: unknown): void {
    const parsed = parseApp(raw, this.problems);
    if (parsed.ok) this.apps.push(parsed.value);
    else this.problems.push({ appId: isObject(raw) ? stringOr(raw.id, null) : null, message: parsed.message });
  }
}

/** The whole listing text at once; throws as ListingParser.finish() does. */
export function parseAppsListing(text: string): ParsedSnapshot {
  const parser = new ListingParser();
  parser.push(text);
  return parser.finish();
}

/** `GET /v2/apps/{id}` answers `{ "app": {...} }`. */
export function parseAppResponse(body: unknown): ParsedSnapshot {
  if (!isObject(body) || !isObject(body.app)) {
    return { snapshot: { apps: [] }, problems: [{ appId: null, message: 'app answer has no "app" object' }] };
  }
  return parseAppList([body.app]);
}

export function parseTasksResponse(body: unknown): { tasks: MarathonTask[]; problems: InputProblem[] } {
  const tasks: MarathonTask[] = [];
  const problems: InputProblem[] = [];
  if (!isObject(body) || !Array.isArray(body.tasks)) {
    return { tasks, problems: [{ appId: null, message: 'tasks listing has no "tasks" array' }] };
  }
  for (const raw of body.tasks) {
    const parsed = parseTask(raw, null, null);
    if (parsed.ok) tasks.push(parsed.value);
    else problems.push({ appId: isObject(raw) ? stringOr(raw.appId, null) : null, message: parsed.message });
  }
  return { tasks, problems };
}

function parseAppList(rawApps: readonly unknown[]): ParsedSnapshot {
  const apps: MarathonApp[] = [];
  const problems: InputProblem[] = [];
  for (const raw of rawApps) {
    const parsed = parseApp(raw, problems);
    if (parsed.ok) apps.push(parsed.value);
    else problems.push({ appId: isObject(raw) ? stringOr(raw.id, null) : null, message: parsed.message });
  }
  return { snapshot: { apps }, problems };
}

function parseApp(raw: unknown, problems: InputProblem[]): Result<MarathonApp> {
  if (!isObject(raw)) return { ok: false, message: 'app is not an object' };
  const id = raw.id;
  if (typeof id !== 'string' || id === '') return { ok: false, message: 'app has no id' };
  if (id.length > MAX_APP_ID_LENGTH) return { ok: false, message: `app id is longer than ${MAX_APP_ID_LENGTH} characters` };
  if (!isWellFormedText(id)) return { ok: false, message: 'app id is not well-formed Unicode (it has a lone surrogate)' };
  const networkMode = networkModeOf(raw);
  const version = stringOr(raw.version, null);
  const tasks: MarathonTask[] = [];
  for (const rawTask of arrayOf(raw.tasks)) {
    const task = parseTask(rawTask, id, version);
    if (task.ok) tasks.push(task.value);
    else problems.push({ appId: id, message: task.message });
  }
  const service = servicePortsOf(raw, networkMode);
  return {
    ok: true,
    value: {
      id,
      labels: parseLabels(raw.labels),
      instances: numberOr(raw.instances, 0) ?? 0,
      networkMode,
      ports: declaredPorts(raw, networkMode),
      // Only when declared, so apps without service ports stay as they were.
      ...(service.some((p) => p !== null) ? { servicePorts: service } : {}),
      healthCheckCount: arrayOf(raw.healthChecks).length,
      ...(arrayOf(raw.healthChecks).length > 0 ? { healthChecks: arrayOf(raw.healthChecks).map(parseHealthCheck) } : {}),
      taskKillGracePeriodSeconds: numberOr(raw.taskKillGracePeriodSeconds, null),
      version,
      tasks,
    },
  };
}

function parseHealthCheck(raw: unknown): HealthCheckSpec {
  if (!isObject(raw)) return { protocol: null, portIndex: null, port: null };
  const portIndex = raw.portIndex;
  return {
    protocol: stringOr(raw.protocol, null),
    portIndex: typeof portIndex === 'number' && Number.isInteger(portIndex) && portIndex >= 0 ? portIndex : null,
    port: portOr(raw.port),
  };
}

function parseLabels(raw: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!isObject(raw)) return labels;
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'string') labels[key] = value;
  }
  return labels;
}

/** Marathon ≥ 1.5 says `networks[].mode`; older versions say `container.docker.network` or `ipAddress`. */
function networkModeOf(app: JsonObject): NetworkMode {
  const networks = arrayOf(app.networks);
  const firstMode = isObject(networks[0]) ? networks[0].mode : undefined;
  if (firstMode === 'container') return 'container';
  if (firstMode === 'container/bridge') return 'bridge';
  if (firstMode === 'host') return 'host';
  if (isObject(app.ipAddress)) return 'container';
  const docker = isObject(app.container) && isObject(app.container.docker) ? app.container.docker : null;
  if (docker?.network === 'USER') return 'container';
  if (docker?.network === 'BRIDGE') return 'bridge';
  return 'host';
}

function declaredPorts(app: JsonObject, mode: NetworkMode): PortSpec[] {
  const container = isObject(app.container) ? app.container : null;
  const docker = container && isObject(container.docker) ? container.docker : null;
  const mappings = arrayOf(container?.portMappings).length > 0 ? arrayOf(container?.portMappings) : arrayOf(docker?.portMappings);
  if (mode !== 'host' && mappings.length > 0) {
    return mappings.map((m) => ({
      containerPort: isObject(m) ? portOr(m.containerPort) : null,
      hostPort: isObject(m) ? portOr(m.hostPort) : null,
      name: isObject(m) ? stringOr(m.name, null) : null,
    }));
  }
  const discovery = isObject(app.ipAddress) && isObject(app.ipAddress.discovery) ? app.ipAddress.discovery : null;
  if (mode === 'container' && discovery) {
    return arrayOf(discovery.ports).map((p) => ({
      containerPort: isObject(p) ? portOr(p.number) : null,
      hostPort: null,
      name: isObject(p) ? stringOr(p.name, null) : null,
    }));
  }
  if (Array.isArray(app.portDefinitions)) {
    return app.portDefinitions.map((p) => ({
      containerPort: null,
      hostPort: isObject(p) ? portOr(p.port) : null,
      name: isObject(p) ? stringOr(p.name, null) : null,
    }));
  }
  return arrayOf(app.ports).map((p) => ({ containerPort: null, hostPort: portOr(p), name: null }));
}

/**
 * Marathon's service ports, in port-index order: `portMappings[].servicePort`
 * (container or docker, for bridge and container networking), else
 * `portDefinitions[].port`, else the legacy `ports`.
 */
function servicePortsOf(app: JsonObject, mode: NetworkMode): (number | null)[] {
  const container = isObject(app.container) ? app.container : null;
  const docker = container && isObject(container.docker) ? container.docker : null;
  const mappings = arrayOf(container?.portMappings).length > 0 ? arrayOf(container?.portMappings) : arrayOf(docker?.portMappings);
  if (mode !== 'host' && mappings.length > 0) return mappings.map((m) => (isObject(m) ? portOr(m.servicePort) : null));
  if (Array.isArray(app.portDefinitions)) return app.portDefinitions.map((p) => (isObject(p) ? portOr(p.port) : null));
  return arrayOf(app.ports).map(portOr);
}

/**
 * A declared port, or null for anything that is not one (0 too: Marathon's
 * "pick one for me"). A containerPort of 70000 or 1.5 would otherwise become
 * a backend nginx refuses, and with it the whole push.
 */
function portOr(value: unknown): number | null {
  return isPort(value) ? value : null;
}

/**
 * The strings a task shares with its app or with every other task (its app
 * id, the app's version, its state, an empty health list) are kept once:
 * 100,000 tasks held 100,000 copies of each, about 10 MB.
 */
function parseTask(raw: unknown, appIdFromParent: string | null, appVersion: string | null): Result<MarathonTask> {
  if (!isObject(raw)) return { ok: false, message: 'task is not an object' };
  const id = raw.id;
  if (typeof id !== 'string' || id === '') return { ok: false, message: 'task has no id' };
  if (!isWellFormedText(id)) return { ok: false, message: `task id ${JSON.stringify(id)} is not well-formed Unicode (it has a lone surrogate)` };
  const ownAppId = stringOr(raw.appId, appIdFromParent);
  const appId = ownAppId === appIdFromParent ? appIdFromParent : ownAppId;
  if (appId === null) return { ok: false, message: `task ${id} has no appId` };
  const startedAt = stringOr(raw.startedAt, null);
  // Listings from Marathon ≤ 1.1 carry no state: a started task is a running one.
  const ownState = stringOr(raw.state, null) ?? (startedAt !== null ? 'TASK_RUNNING' : 'TASK_STAGING');
  const state = KNOWN_STATES.get(ownState) ?? ownState;
  const ownVersion = stringOr(raw.version, null);
  const host = stringOr(raw.host, '') ?? '';
  const results = arrayOf(raw.healthCheckResults);
  const ports = arrayOf(raw.ports);
  if (!ports.every(isPort)) return { ok: false, message: `task ${id} has a malformed "ports" list` };
  return {
    ok: true,
    value: {
      id,
      appId,
      host,
      state,
      ports: ports as number[],
      ipAddresses: ipAddressesOf(raw.ipAddresses, host),
      startedAt,
      stagedAt: stringOr(raw.stagedAt, null),
      version: ownVersion === appVersion ? appVersion : ownVersion,
      healthCheckResults: results.length === 0 ? NO_RESULTS : results.filter(isObject).map(parseHealthResult),
    },
  };
}

const KNOWN_STATES: ReadonlyMap<string, string> = new Map(
  ['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_KILLED', 'TASK_FINISHED', 'TASK_FAILED', 'TASK_LOST', 'TASK_ERROR', 'TASK_UNREACHABLE', 'TASK_GONE', 'TASK_DROPPED', 'TASK_UNKNOWN'].map((s) => [s, s]),
);
const NO_RESULTS: readonly HealthResult[] = Object.freeze([]);
const NO_ADDRESSES: readonly string[] = Object.freeze([]);

/** A task's one address that is its host (host networking), kept once per host; at most this many hosts. */
const HOST_ADDRESSES = new Map<string, readonly string[]>();
const MAX_HOST_ADDRESSES = 10_000;

/** IPv4 first (one pass: a listing has 100,000 of these lists). */
function ipAddressesOf(raw: unknown, host: string): readonly string[] {
  const entries = arrayOf(raw);
  if (entries.length === 0) return NO_ADDRESSES;
  const addresses: string[] = [];
  let v6: string[] | null = null;
  for (const entry of entries) {
    if (!isObject(entry)) continue;
    const address = entry.ipAddress;
    if (typeof address !== 'string' || address === '') continue;
    if (entry.protocol === 'IPv6') (v6 ??= []).push(address);
    else addresses.push(address);
  }
  if (v6 !== null) addresses.push(...v6);
  if (addresses.length !== 1 || addresses[0] !== host) return addresses;
  let shared = HOST_ADDRESSES.get(host);
  if (shared === undefined && HOST_ADDRESSES.size < MAX_HOST_ADDRESSES) HOST_ADDRESSES.set(host, (shared = Object.freeze([host])));
  return shared ?? addresses;
}

/** Only what the routing reads: at 100,000 tasks, two more timestamps each held about 8 MB. */
function parseHealthResult(raw: JsonObject): HealthResult {
  return { alive: raw.alive === true, firstSuccess: stringOr(raw.firstSuccess, null) };
}
