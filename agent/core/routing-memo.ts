/**
 * Builds the routing table incrementally. The memo remembers each Marathon
 * app's judgement, how apps group into logical apps, who owns each host name
 * and the table itself; a computation re-judges only the Marathon apps whose
 * objects changed (or whose verdicts lean on the clock or on remembered
 * health) and rebuilds only the logical apps they touch. Computing from
 * scratch is the same algorithm applied to an empty memo, so both give the
 * same table.
 */
import { DEFAULT_VERSION } from './labels.js';
import { ROOT_PATH, sameSettings, type RouteSettings } from './route-settings.js';
import { hashParts, StreamingHash } from './hash.js';
import { describeTcpBind } from './tcp-bind.js';
import { judgeMarathonApp, sameHosts, type JudgedApp, type VersionCandidate } from './judge-app.js';
import type { RememberedHealth } from './lifecycle.js';
import type { InputProblem, MarathonApp, MarathonSnapshot } from './marathon-types.js';
import { isDeployment, mergeColours, type DeploymentMark } from './zdd-merge.js';
import type { AppRoute, BackendStatus, RoutingConfig, RoutingInput, RoutingResult, RoutingTable, VersionRoute } from './routing-table.js';

type Digest = readonly [number, number];

const NO_DRAINS: ReadonlyMap<string, string> = new Map();

interface JudgedEntry {
  readonly app: MarathonApp;
  readonly judged: JudgedApp;
}

/**
 * One logical app (edgeroute.app): its versions, the (host, path) places it
 * wants and holds, its route. A place is written `host/path` ("a.example/",
 * "a.example/api"): a host name has no "/", and a path starts with one.
 */
interface LogicalApp {
  /** Marathon app id → its candidate for this logical app. */
  readonly members: Map<string, VersionCandidate>;
  /** After the one-Marathon-app-per-version rule, sorted by version. */
  versions: readonly VersionCandidate[];
  versionProblems: readonly InputProblem[];
  wanted: readonly string[];
  claimed: readonly string[];
  claimProblems: readonly InputProblem[];
  route: AppRoute | null;
  digest: Digest | null;
}

export class RoutingMemo {
  private config: RoutingConfig | null = null;
  private readonly judged = new Map<string, JudgedEntry>();
  private readonly logical = new Map<string, LogicalApp>();
  /** Place (host and path) → logical apps that want it; the first by id owns it. */
  private readonly wantedBy = new Map<string, Set<string>>();
  private readonly owner = new Map<string, string>();
  private table: RoutingTable | null = null;
  private digest: [number, number] = [0, 0];
  private routeCount = 0;
  /** Marathon app id → when its verdicts change by the clock alone. */
  private readonly clockDue = new Map<string, number>();
  /** Marathon apps and logical apps that have problems to report. */
  private readonly troubledApps = new Set<string>();
  private readonly troubledKeys = new Set<string>();
  /** The drain marks the kept judgements were made with. */
  private drains: ReadonlyMap<string, string> = NO_DRAINS;
  /** The snapshot and host addresses of the last computation, which `changes` are taken against. */
  private snapshot: MarathonSnapshot | null = null;
  private hostAddresses: ReadonlyMap<string, string> | null = null;
  /** Marathon apps judged afresh every time: their verdicts lean on the clock or on remembered health. */
  private readonly volatile = new Set<string>();
  /** Marathon apps whose judgement used the addresses of host names. */
  private readonly hostBound = new Set<string>();

  apply(input: RoutingInput): RoutingResult {
    if (this.config === null || !sameConfig(this.config, input.config)) this.reset(input.config);
    const previous = this.table;
    const observations: Array<readonly [string, RememberedHealth]> = [];
    const touched = new Set<string>();

    for (const [id, judged] of this.changedApps(input)) {
      for (const observation of judged?.judged.observations ?? []) observations.push(observation);
      this.replaceJudgement(id, judged, touched);
    }
    const replaced = new Map<string, AppRoute | null>();
    const { upserts, removals } = this.rebuild(touched, replaced);
    const table = this.tableAfter(upserts, removals);
    this.table = table;
    return this.result(table, { since: previous, upserts, removals, replaced }, observations);
  }

  private reset(config: RoutingConfig): void {
    this.config = config;
    this.drains = NO_DRAINS;
    this.judged.clear();
    this.logical.clear();
    this.wantedBy.clear();
    this.owner.clear();
    this.table = null;
    this.digest = [0, 0];
    this.routeCount = 0;
    this.clockDue.clear();
    this.troubledApps.clear();
    this.troubledKeys.clear();
    this.snapshot = null;
    this.hostAddresses = null;
    this.volatile.clear();
    this.hostBound.clear();
  }

  /** Marathon app id → its new judgement, or null when the app is gone. */
  private changedApps(input: RoutingInput): Map<string, JudgedEntry | null> {
    const since = this.snapshot;
    const hostsSince = this.hostAddresses;
    this.snapshot = input.snapshot;
    this.hostAddresses = input.hostAddresses;
    const changes = input.changes;
    if (changes !== undefined && since !== null && changes.since === since) return this.appsNamed(changes.apps, input, hostsSince);
    return this.appsCompared(input);
  }

  /**
   * Given the apps that changed: judges those, and the unchanged apps whose
   * verdicts may differ anyway (clock, remembered health, drain marks, host
   * addresses), exactly the apps a comparison of every app would judge.
   */
  private appsNamed(named: ReadonlyMap<string, MarathonApp | null>, input: RoutingInput, hostsSince: ReadonlyMap<string, string> | null): Map<string, JudgedEntry | null> {
    const changed = new Map<string, JudgedEntry | null>();
    const again = new Set([...this.volatile, ...this.appsWithChangedDrains(input)]);
    if (input.hostAddresses !== hostsSince) {
      for (const id of this.hostBound) if (!sameHosts((this.judged.get(id) as JudgedEntry).judged.hostsUsed, input.hostAddresses)) again.add(id);
    }
    for (const [id, app] of named) {
      const known = this.judged.get(id);
      if (app === null) {
        if (known) changed.set(id, null);
      } else if (!known || known.app !== app || again.has(id)) changed.set(id, { app, judged: judgeMarathonApp(app, input) });
    }
    for (const id of again) {
      const known = this.judged.get(id);
      if (known && !named.has(id)) changed.set(id, { app: known.app, judged: judgeMarathonApp(known.app, input) });
    }
    return changed;
  }

  /** Compares every app of the snapshot with the one last judged. */
  private appsCompared(input: RoutingInput): Map<string, JudgedEntry | null> {
    const changed = new Map<string, JudgedEntry | null>();
    const redrained = this.appsWithChangedDrains(input);
    let kept = 0;
    for (const app of input.snapshot.apps) {
      const known = this.judged.get(app.id);
      if (known) kept++;
      if (
        known &&
        known.app === app &&
        known.judged.reusable &&
        !redrained.has(app.id) &&
        (known.judged.hostsUsed.length === 0 || sameHosts(known.judged.hostsUsed, input.hostAddresses))
      )
        continue;
      changed.set(app.id, { app, judged: judgeMarathonApp(app, input) });
    }
    if (kept < this.judged.size) {
      const present = new Set(input.snapshot.apps.map((app) => app.id));
      for (const id of this.judged.keys()) if (!present.has(id)) changed.set(id, null);
    }
    return changed;
  }

  /**
   * Apps holding a task whose drain mark appeared, went or changed since the
   * last computation. Marks change only when ops drain something, so scanning
   * the tasks then is cheaper than indexing every task all the time.
   */
  private appsWithChangedDrains(input: RoutingInput): Set<string> {
    const drains = input.drains ?? NO_DRAINS;
    const apps = new Set<string>();
    if (drains === this.drains) return apps;
    const tasks = new Set<string>();
    for (const [task, reason] of drains) if (this.drains.get(task) !== reason) tasks.add(task);
    for (const task of this.drains.keys()) if (!drains.has(task)) tasks.add(task);
    this.drains = drains;
    if (tasks.size === 0) return apps;
    // Every app judged before: a new app is judged anyway, and a gone one needs nothing.
    for (const { app } of this.judged.values()) if (app.tasks.some((task) => tasks.has(task.id))) apps.add(app.id);
    return apps;
  }

  /** Records an app's new judgement and marks the logical apps it leaves or joins. */
  private replaceJudgement(id: string, entry: JudgedEntry | null, touched: Set<string>): void {
    for (const old of this.judged.get(id)?.judged.candidates ?? []) {
      this.logical.get(old.appKey)?.members.delete(id);
      touched.add(old.appKey);
    }
    if (entry === null) {
      this.judged.delete(id);
      this.clockDue.delete(id);
      this.troubledApps.delete(id);
      this.volatile.delete(id);
      this.hostBound.delete(id);
      return;
    }
    this.judged.set(id, entry);
    if (entry.judged.reusable) this.volatile.delete(id);
    else this.volatile.add(id);
    if (entry.judged.hostsUsed.length > 0) this.hostBound.add(id);
    else this.hostBound.delete(id);
    if (entry.judged.problems.length > 0) this.troubledApps.add(id);
    else this.troubledApps.delete(id);
    if (entry.judged.nextChangeAt === null) this.clockDue.delete(id);
    else this.clockDue.set(id, entry.judged.nextChangeAt);
    for (const candidate of entry.judged.candidates) {
      let logical = this.logical.get(candidate.appKey);
      if (!logical) {
        logical = { members: new Map(), versions: [], versionProblems: [], wanted: [], claimed: [], claimProblems: [], route: null, digest: null };
        this.logical.set(candidate.appKey, logical);
      }
      logical.members.set(id, candidate);
      touched.add(candidate.appKey);
    }
  }

  /** Rebuilds the touched logical apps and every app whose host names changed hands. */
  private rebuild(touched: Set<string>, replaced: Map<string, AppRoute | null>): { upserts: AppRoute[]; removals: string[] } {
    const contested = new Set<string>();
    for (const key of touched) {
      const logical = this.logical.get(key);
      if (!logical) continue;
      const { versions, problems } = pickVersions(key, logical.members);
      logical.versions = versions;
      logical.versionProblems = problems;
      const tcp = tcpPlace(versions);
      const wanted = [...new Set([...versions.flatMap(placesOf), ...(tcp === null ? [] : [tcp])])].sort(compare);
      for (const vhost of logical.wanted) if (!wanted.includes(vhost)) this.unwant(vhost, key, contested);
      for (const vhost of wanted) if (!logical.wanted.includes(vhost)) this.want(vhost, key, contested);
      logical.wanted = wanted;
    }
    const rebuild = new Set(touched);
    for (const vhost of contested) {
      const before = this.owner.get(vhost);
      const wanters = this.wantedBy.get(vhost);
      const after = wanters && wanters.size > 0 ? [...wanters].sort(compare)[0] : undefined;
      if (after === undefined) this.owner.delete(vhost);
      else this.owner.set(vhost, after);
      if (before !== after) {
        if (before !== undefined) rebuild.add(before);
        for (const key of wanters ?? []) rebuild.add(key);
      }
    }
    const upserts: AppRoute[] = [];
    const removals: string[] = [];
    for (const key of [...rebuild].sort(compare)) this.rebuildRoute(key, upserts, removals, replaced);
    return { upserts, removals };
  }

  private want(vhost: string, key: string, contested: Set<string>): void {
    let wanters = this.wantedBy.get(vhost);
    if (!wanters) {
      wanters = new Set();
      this.wantedBy.set(vhost, wanters);
    }
    wanters.add(key);
    contested.add(vhost);
  }

  private unwant(vhost: string, key: string, contested: Set<string>): void {
    const wanters = this.wantedBy.get(vhost);
    wanters?.delete(key);
    if (wanters?.size === 0) this.wantedBy.delete(vhost);
    contested.add(vhost);
  }

  private rebuildRoute(key: string, upserts: AppRoute[], removals: string[], replaced: Map<string, AppRoute | null>): void {
    const logical = this.logical.get(key);
    const claimed: string[] = [];
    const claimProblems: InputProblem[] = [];
    for (const place of logical?.wanted ?? []) {
      const holder = this.owner.get(place);
      if (holder === key) claimed.push(place);
      else if (holder !== undefined) {
        claimProblems.push({ appId: logical?.versions[0]?.marathonAppId ?? key, message: `${describePlace(place)} is already routed to app ${holder}; not routed here` });
      }
    }
    const settingsProblems = logical ? [...settingsConflicts(key, logical.versions), ...tcpPortConflicts(key, logical.versions)] : [];
    claimProblems.push(...settingsProblems);
    const oldRoute = logical?.route ?? null;
    const oldDigest = logical?.digest ?? null;
    let route: AppRoute | null = null;
    if (logical && logical.versions.length > 0 && claimed.length > 0) {
      const same = oldRoute !== null && sameStrings(logical.claimed, claimed) && sameVersions(oldRoute, logical.versions) && oldRoute.settings === routeSettings(logical.versions);
      route = same ? oldRoute : appRoute(key, claimed.length === logical.wanted.length ? logical.wanted : claimed, logical.versions);
      // Rebuilt with the same content (e.g. a task came and went): nothing changed.
      if (oldRoute !== null && route.hash === oldRoute.hash) route = oldRoute;
    }
    if (logical && (logical.versionProblems.length > 0 || claimProblems.length > 0)) this.troubledKeys.add(key);
    else this.troubledKeys.delete(key);
    if (logical) {
      logical.claimed = claimed;
      logical.claimProblems = claimProblems;
      logical.route = route;
      logical.digest = route === null ? null : route === oldRoute ? oldDigest : hashParts(`${route.id}=${route.hash}`);
      if (logical.members.size === 0) {
        this.logical.delete(key);
        this.troubledKeys.delete(key);
      }
    }
    if (route === oldRoute) return;
    replaced.set(key, oldRoute);
    if (oldDigest) this.combine(oldDigest, -1);
    if (route) {
      this.combine(logical?.digest as Digest, 1);
      upserts.push(route);
    } else if (oldRoute) removals.push(key);
  }

  private combine(digest: Digest, count: 1 | -1): void {
    this.digest = [(this.digest[0] ^ digest[0]) >>> 0, (this.digest[1] ^ digest[1]) >>> 0];
    this.routeCount += count;
  }

  /** The new table shares every unchanged route object with the previous one. */
  private tableAfter(upserts: readonly AppRoute[], removals: readonly string[]): RoutingTable {
    const previous = this.table;
    if (previous !== null && upserts.length === 0 && removals.length === 0) return previous;
    return lazyTable(versionString(this.digest, this.routeCount), previous, upserts, removals, this.routeCount);
  }

  private result(table: RoutingTable, changes: RoutingResult['changes'], observations: RoutingResult['observations']): RoutingResult {
    const problems: InputProblem[] = [];
    for (const id of this.troubledApps) problems.push(...(this.judged.get(id)?.judged.problems ?? []));
    for (const key of this.troubledKeys) {
      const logical = this.logical.get(key);
      if (logical) problems.push(...logical.versionProblems, ...logical.claimProblems);
    }
    problems.sort((a, b) => compare(a.appId ?? '', b.appId ?? '') || compare(a.message, b.message));
    let nextChangeAt: number | null = null;
    for (const at of this.clockDue.values()) nextChangeAt = nextChangeAt === null ? at : Math.min(nextChangeAt, at);
    let backends: readonly BackendStatus[] | null = null;
    const logical = this.logical;
    return {
      table,
      changes,
      problems,
      // Built on demand: a hundred thousand entries are not needed on every sync.
      get backends() {
        backends ??= [...logical.values()]
          .filter((l) => l.route !== null)
          .flatMap((l) => l.versions)
          .sort((a, b) => compare(a.marathonAppId, b.marathonAppId))
          .flatMap((c) => c.statuses());
        return backends;
      },
      statusesOf(appId: string) {
        const app = logical.get(appId);
        return app?.route ? app.versions.flatMap((c) => c.statuses()) : [];
      },
      observations,
      nextChangeAt,
    };
  }
}

/** How many unread tables may chain before the chain is squashed into one step. */
const MAX_CHAIN = 32;
/** Changes since the last table built that make the next one be built anyway: this many, or an eighth of the table. */
const MIN_CHANGES_TO_BUILD = 256;

interface TableLink {
  readonly parent: RoutingTable | null;
  readonly upserts: readonly AppRoute[];
  readonly removals: readonly string[];
  readonly depth: number;
  /** Apps the steps since the nearest built ancestor name (counted again when named again, until squashed). */
  readonly touched: number;
}

const links = new WeakMap<RoutingTable, TableLink>();

/**
 * A table whose `apps` record is built only when read (a full push, a diff
 * against an unknown table): copying 10,000 entries on every event would
 * cost more than the rest of the computation. It reads as a plain object.
 * Unread tables chain their changes; every MAX_CHAIN tables the chain is
 * squashed into one step (work in proportion to the changes), and a table
 * is built only once the changes since the last one built are a good part
 * of it, so that a walk never costs more than a copy.
 */
function lazyTable(version: string, parent: RoutingTable | null, upserts: readonly AppRoute[], removals: readonly string[], size: number): RoutingTable {
  let apps: Record<string, AppRoute> | null = null;
  const table = { version } as RoutingTable;
  const above = parent === null ? undefined : links.get(parent);
  let link: TableLink = { parent, upserts, removals, depth: (above?.depth ?? 0) + 1, touched: (above?.touched ?? 0) + upserts.length + removals.length };
  if (link.depth > MAX_CHAIN) link = squash(link);
  links.set(table, link);
  Object.defineProperty(table, 'apps', {
    enumerable: true,
    get() {
      apps ??= materialize(table);
      return apps;
    },
  });
  if (link.touched > Math.max(MIN_CHANGES_TO_BUILD, size / 8)) void table.apps;
  return table;
}

/** The chain up to the nearest built ancestor as one step: each app's last change. */
function squash(link: TableLink): TableLink {
  const steps: TableLink[] = [link];
  let base = link.parent;
  for (let above = base ? links.get(base) : undefined; above; above = base ? links.get(base) : undefined) {
    steps.push(above);
    base = above.parent;
  }
  const last = new Map<string, AppRoute | null>();
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i] as TableLink;
    for (const id of step.removals) last.set(id, null);
    for (const route of step.upserts) last.set(route.id, route);
  }
  const upserts: AppRoute[] = [];
  const removals: string[] = [];
  for (const [id, route] of last) {
    if (route === null) removals.push(id);
    else upserts.push(route);
  }
  return { parent: base, upserts, removals, depth: 1, touched: last.size };
}

function materialize(table: RoutingTable): Record<string, AppRoute> {
  const chain: TableLink[] = [];
  let base: RoutingTable | null = table;
  let link = links.get(table);
  while (link && base) {
    chain.push(link);
    base = link.parent;
    link = base ? links.get(base) : undefined;
    // A built ancestor ends the walk (its link was dropped).
  }
  const apps: Record<string, AppRoute> = base ? { ...base.apps } : {};
  for (let i = chain.length - 1; i >= 0; i--) {
    const step = chain[i] as TableLink;
    for (const id of step.removals) delete apps[id];
    for (const route of step.upserts) apps[route.id] = route;
  }
  // Built: the ancestors are no longer needed by this table.
  links.delete(table);
  return apps;
}

/**
 * One Marathon app per version: the first by Marathon id keeps it, the others are reported;
 * but the colours of a marathon-lb blue/green deployment (zdd) are one version, merged.
 */
function pickVersions(key: string, members: ReadonlyMap<string, VersionCandidate>): { versions: VersionCandidate[]; problems: InputProblem[] } {
  const byVersion = new Map<string, VersionCandidate>();
  const problems: InputProblem[] = [];
  const sorted = [...members.values()].sort((a, b) => compare(a.marathonAppId, b.marathonAppId));
  const colours = new Map<string, Array<VersionCandidate & { deployment: DeploymentMark }>>();
  for (const candidate of sorted) if (isDeployment(candidate)) colours.set(candidate.version, [...(colours.get(candidate.version) ?? []), candidate]);
  for (const [version, pair] of colours) if (pair.length > 1) byVersion.set(version, mergeColours(pair));
  for (const candidate of sorted) {
    if (isDeployment(candidate) && (colours.get(candidate.version)?.length ?? 0) > 1) continue;
    const holder = byVersion.get(candidate.version);
    if (holder) {
      problems.push({ appId: candidate.marathonAppId, message: `skipped: version "${candidate.version}" of app "${key}" is already ${holder.marathonAppId}` });
      continue;
    }
    byVersion.set(candidate.version, candidate);
  }
  return { versions: [...byVersion.values()].sort((a, b) => compare(a.version, b.version)), problems };
}

/**
 * A TCP port is a place too, written `tcp:PORT`, or `tcp:ADDRESS/PORT` with
 * edgeroute.tcpBind (a host name has no ":"): the logical app's, from its
 * first Marathon app by id. The same port on two addresses is two places
 * (HAProxy listens on each, as marathon-lb does); the same address and port
 * twice is one, which the first app by id holds.
 */
const TCP_PLACE = 'tcp:';

function tcpPlace(candidates: readonly VersionCandidate[]): string | null {
  const first = firstById(candidates);
  const port = first?.tcpPort ?? null;
  if (port === null) return null;
  return first?.tcpBind ? `${TCP_PLACE}${first.tcpBind}/${port}` : `${TCP_PLACE}${port}`;
}

function tcpPortConflicts(key: string, candidates: readonly VersionCandidate[]): InputProblem[] {
  const first = firstById(candidates);
  if (!first) return [];
  return candidates
    .filter((c) => c !== first && (c.tcpPort !== first.tcpPort || c.tcpBind !== first.tcpBind))
    .map((c) => ({ appId: c.marathonAppId, message: `its ${c.tcpPort !== first.tcpPort ? 'edgeroute.tcpPort' : 'edgeroute.tcpBind'} differs from ${first.marathonAppId}'s, which app "${key}" uses for every version` }));
}

/** Every (host, path) a version asks for. */
function placesOf(candidate: VersionCandidate): string[] {
  return candidate.vhosts.flatMap((host) => candidate.paths.map((path) => `${host}${path}`));
}

/** `tcp:PORT` or `tcp:ADDRESS/PORT` → its address (undefined: the node's TCP listen hosts) and port. */
function tcpPlaceParts(place: string): [address: string | undefined, port: number] {
  const rest = place.slice(TCP_PLACE.length);
  const slash = rest.lastIndexOf('/');
  return slash < 0 ? [undefined, Number(rest)] : [rest.slice(0, slash), Number(rest.slice(slash + 1))];
}

function splitPlace(place: string): [host: string, path: string] {
  const slash = place.indexOf('/');
  return [place.slice(0, slash), place.slice(slash)];
}

function describePlace(place: string): string {
  if (place.startsWith(TCP_PLACE)) {
    const [address, port] = tcpPlaceParts(place);
    return address === undefined ? `TCP port ${port}` : `TCP port ${describeTcpBind(address, port)}`;
  }
  const [host, path] = splitPlace(place);
  return path === ROOT_PATH ? `host ${host}` : `host ${host} path ${path}`;
}

/** The versions of one logical app share one set of settings: those of the first Marathon app by id. */
function routeSettings(candidates: readonly VersionCandidate[]): RouteSettings | undefined {
  return firstById(candidates)?.settings ?? undefined;
}

function firstById(candidates: readonly VersionCandidate[]): VersionCandidate | undefined {
  let first: VersionCandidate | undefined;
  for (const c of candidates) if (first === undefined || compare(c.marathonAppId, first.marathonAppId) < 0) first = c;
  return first;
}

function settingsConflicts(key: string, candidates: readonly VersionCandidate[]): InputProblem[] {
  const first = firstById(candidates);
  if (!first) return [];
  return candidates
    .filter((c) => c !== first && !sameSettings(c.settings, first.settings))
    .map((c) => ({ appId: c.marathonAppId, message: `its route settings differ from ${first.marathonAppId}'s, which app "${key}" uses for every version` }));
}

function appRoute(appKey: string, places: readonly string[], candidates: readonly VersionCandidate[]): AppRoute {
  const vhosts: string[] = [];
  // Host names are data: "__proto__" is a valid one.
  const pathsByHost: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  let onlyRoot = true;
  let tcpPort: number | undefined;
  let tcpBind: string | undefined;
  for (const place of places) {
    if (place.startsWith(TCP_PLACE)) {
      [tcpBind, tcpPort] = tcpPlaceParts(place);
      continue;
    }
    const [host, path] = splitPlace(place);
    let paths = pathsByHost[host];
    if (paths === undefined) {
      paths = [];
      pathsByHost[host] = paths;
      vhosts.push(host);
    }
    paths.push(path);
    if (path !== ROOT_PATH) onlyRoot = false;
  }
  // Sorted by name, not by place ("a.b/" sorts before "a/").
  vhosts.sort(compare);
  const paths = onlyRoot ? undefined : pathsByHost;
  const settings = routeSettings(candidates);
  const versions: Record<string, VersionRoute> = {};
  for (const c of candidates) versions[c.version] = { marathonAppId: c.marathonAppId, backends: c.backends };
  // A version still starting (no backend yet) never becomes the default by its name alone: a
  // new version deployed next to the old one must not take traffic before its policy says so.
  const defaultVersion =
    DEFAULT_VERSION in versions ? DEFAULT_VERSION : (candidates.find((c) => c.backends.length > 0) ?? candidates[0])?.version ?? DEFAULT_VERSION;
  const route: { -readonly [K in keyof AppRoute]: AppRoute[K] } = { id: appKey, vhosts, defaultVersion, versions, hash: '' };
  if (paths) route.paths = paths;
  if (settings) route.settings = settings;
  if (tcpPort !== undefined) route.tcpPort = tcpPort;
  if (tcpPort !== undefined && tcpBind !== undefined) route.tcpBind = tcpBind;
  route.hash = routeHash(route, candidates);
  return route;
}

/** Every field the plugin routes by, in a fixed order (candidates come sorted by version). */
function routeHash(route: Omit<AppRoute, 'hash'>, candidates: readonly VersionCandidate[]): string {
  const hash = new StreamingHash().add(route.id).add(route.vhosts.length);
  for (const vhost of route.vhosts) hash.add(vhost);
  hash.add(route.defaultVersion).add(candidates.length);
  for (const c of candidates) {
    hash.add(c.version).add(c.marathonAppId).add(c.backends.length);
    for (const b of c.backends) hash.add(b.id).add(b.address).add(b.port).add(b.weight);
  }
  // Only when present, so that routes without them keep their hashes.
  if (route.paths) hash.add('paths').add(JSON.stringify(route.paths));
  if (route.settings) hash.add('settings').add(JSON.stringify(route.settings));
  if (route.tcpPort !== undefined) hash.add('tcpPort').add(route.tcpPort);
  if (route.tcpBind !== undefined) hash.add('tcpBind').add(route.tcpBind);
  return hash.hex();
}

/** Whether `route` was built from exactly these candidates (same objects). */
function sameVersions(route: AppRoute, versions: readonly VersionCandidate[]): boolean {
  const names = Object.keys(route.versions);
  return (
    names.length === versions.length &&
    versions.every((v) => route.versions[v.version]?.backends === v.backends && route.versions[v.version]?.marathonAppId === v.marathonAppId)
  );
}

/** The table's version: every route's digest combined, so it costs no string of the whole table. */
function versionString(digest: Digest, count: number): string {
  return `${digest[0].toString(16).padStart(6, '0')}${digest[1].toString(16).padStart(8, '0')}-${count}`;
}

function sameConfig(a: RoutingConfig, b: RoutingConfig): boolean {
  return (Object.keys(b) as Array<keyof RoutingConfig>).every((key) => a[key] === b[key]);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
