/**
 * The Lua action's plan (lua-records.ts's luaPlan) kept up to date change by
 * change: hosts.map targets, rules.map records, wildcards.map and
 * versions.map, with the keys each change touched. A change of some apps
 * recomputes their hosts (who shares a host decides its target and its h:
 * record), the records of the apps whose place in the Lua action those hosts
 * changed, and their versions.map entries: work in proportion to the change,
 * not to the 10,000 apps a node may hold. After any sequence of changes the
 * plan equals luaPlan computed whole (a randomized test checks it).
 */
import type { AppRoute } from '../../core/routing-table.js';
import { appRecord, encodePart, LUA_TARGET, needsLua, recordEntries, usableHost, type LuaPlan } from './lua-records.js';

export interface PlanInputs {
  readonly routes: ReadonlyMap<string, AppRoute>;
  /** Version → pool backend of every placed version of the app (the default's first); undefined or empty: not placed. */
  backends(app: string): ReadonlyMap<string, string> | undefined;
  /** The app's policy record, or null. */
  policy(app: string): string | null;
  /** The x:regions record, or null. */
  readonly regions: string | null;
}

/** Keys whose value the last update set, changed or removed, per map. */
export interface PlanChanges {
  readonly hosts: ReadonlySet<string>;
  readonly rules: ReadonlySet<string>;
  readonly wildcards: ReadonlySet<string>;
  readonly versions: ReadonlySet<string>;
}

const REGIONS_KEY = 'x:regions';

export class LuaPlanner implements LuaPlan {
  readonly hosts = new Map<string, string>();
  readonly rules = new Map<string, string>();
  readonly wildcards = new Map<string, string>();
  /** versions.map: pool backend → the version it serves, for every placed version of every app. */
  readonly versions = new Map<string, string>();
  /** Host → app → the prefixes the app holds there, one list per vhost that lowercases to the host. */
  private readonly owners = new Map<string, Map<string, Array<readonly string[]>>>();
  /** App → the hosts it was entered under. */
  private readonly hostsOf = new Map<string, string[]>();
  /** App → the hosts whose h: record lists it: it has a: (and p:) records while it has one. */
  private readonly luaHostsOf = new Map<string, Set<string>>();
  /** Host → the apps its h: record lists. */
  private readonly luaAppsOf = new Map<string, readonly string[]>();
  /** A record's key → the rules.map keys it was written as (one, or a split record's parts). */
  private readonly entriesOf = new Map<string, readonly string[]>();
  /** App → the backends it has in versions.map. */
  private readonly backendsOf = new Map<string, readonly string[]>();

  private changes = emptyChanges();

  /** Forgets everything and plans every app. */
  rebuild(inputs: PlanInputs): PlanChanges {
    const before = { hosts: [...this.hosts.keys()], rules: [...this.rules.keys()], wildcards: [...this.wildcards.keys()], versions: [...this.versions.keys()] };
    for (const map of [this.hosts, this.rules, this.wildcards, this.versions, this.owners, this.hostsOf, this.luaHostsOf, this.luaAppsOf, this.entriesOf, this.backendsOf]) map.clear();
    const changes = this.update(inputs.routes.keys(), inputs);
    for (const key of before.hosts) changes.hosts.add(key);
    for (const key of before.rules) changes.rules.add(key);
    for (const key of before.wildcards) changes.wildcards.add(key);
    for (const key of before.versions) changes.versions.add(key);
    return changes;
  }

  /** Plans again what a change of these apps (their routes or the backends they hold) can change. */
  update(apps: Iterable<string>, inputs: PlanInputs): { hosts: Set<string>; rules: Set<string>; wildcards: Set<string>; versions: Set<string> } {
    this.changes = emptyChanges();
    const changed = new Set(apps);
    const hosts = new Set<string>();
    for (const app of changed) {
      for (const host of this.hostsOf.get(app) ?? []) {
        hosts.add(host);
        const owners = this.owners.get(host);
        owners?.delete(app);
        if (owners?.size === 0) this.owners.delete(host);
      }
      this.hostsOf.delete(app);
      const route = inputs.routes.get(app);
      if (!route) continue;
      const entered: string[] = [];
      for (const vhost of route.vhosts) {
        const host = vhost.toLowerCase();
        if (!usableHost(host)) continue;
        let owners = this.owners.get(host);
        if (!owners) this.owners.set(host, (owners = new Map()));
        let prefixes = owners.get(app);
        if (!prefixes) owners.set(app, (prefixes = []));
        prefixes.push(route.paths?.[vhost] ?? ['/']);
        if (!entered.includes(host)) entered.push(host);
        hosts.add(host);
      }
      if (entered.length > 0) this.hostsOf.set(app, entered);
    }
    const records = new Set(changed);
    for (const host of hosts) for (const app of this.planHost(host, inputs)) records.add(app);
    for (const app of records) this.planApp(app, inputs);
    this.planVersions(changed, inputs);
    this.setRecord(REGIONS_KEY, inputs.regions);
    return this.changes;
  }

  /** The host's target and h: record; returns the apps that joined or left its record. */
  private planHost(host: string, inputs: PlanInputs): string[] {
    const owners = this.owners.get(host);
    const wildcard = host.startsWith('*.');
    let target: string | undefined;
    let luaApps: string[] = [];
    let record: string | null = null;
    const placed = owners ? [...owners.keys()].filter((app) => inputs.backends(app)?.size).sort(compare) : [];
    if (placed.length > 0) {
      const entries = [...owners!.values()].reduce((n, lists) => n + lists.length, 0);
      const only = placed.length === 1 && entries === 1 && !wildcard ? placed[0]! : null;
      const route = only === null ? null : inputs.routes.get(only)!;
      if (route && !needsLua(route)) {
        target = inputs.backends(only!)!.get(route.defaultVersion);
      } else {
        target = LUA_TARGET;
        luaApps = placed;
        const items: string[] = [];
        for (const app of placed) for (const prefixes of owners!.get(app)!) for (const prefix of prefixes) items.push(`${encodePart(prefix)}:${encodePart(app)}`);
        record = `p=${items.join(',')}`;
      }
    }
    if (wildcard) {
      this.setEntry(this.wildcards, this.changes.wildcards, host.slice(1), target === LUA_TARGET ? LUA_TARGET : undefined);
    } else {
      this.setEntry(this.hosts, this.changes.hosts, host, target);
    }
    this.setRecord(`h:${host}`, record);
    const before = this.luaAppsOf.get(host) ?? [];
    if (luaApps.length > 0) this.luaAppsOf.set(host, luaApps);
    else this.luaAppsOf.delete(host);
    const moved: string[] = [];
    for (const app of before) {
      if (luaApps.includes(app)) continue;
      const of = this.luaHostsOf.get(app);
      of?.delete(host);
      if (of?.size === 0) this.luaHostsOf.delete(app);
      moved.push(app);
    }
    for (const app of luaApps) {
      if (before.includes(app)) continue;
      let of = this.luaHostsOf.get(app);
      if (!of) this.luaHostsOf.set(app, (of = new Set()));
      of.add(host);
      moved.push(app);
    }
    return moved;
  }

  /** The app's a: and p: records, while a Lua host lists it. */
  private planApp(app: string, inputs: PlanInputs): void {
    const route = inputs.routes.get(app);
    const listed = route !== undefined && (this.luaHostsOf.get(app)?.size ?? 0) > 0;
    this.setRecord(`a:${encodePart(app)}`, listed ? appRecord(route, inputs.backends(app)!) : null);
    const policy = listed && Object.keys(route.versions).length > 1 ? inputs.policy(app) : null;
    this.setRecord(`p:${encodePart(app)}`, policy);
  }

  private planVersions(apps: ReadonlySet<string>, inputs: PlanInputs): void {
    const held = new Map<string, string>();
    for (const app of apps) {
      const backends: string[] = [];
      if (inputs.routes.has(app)) {
        for (const [version, backend] of inputs.backends(app) ?? []) {
          held.set(backend, version);
          backends.push(backend);
        }
      }
      // Let go of first: a backend one app let go may be another's now.
      for (const backend of this.backendsOf.get(app) ?? []) if (!held.has(backend)) this.setEntry(this.versions, this.changes.versions, backend, undefined);
      if (backends.length > 0) this.backendsOf.set(app, backends);
      else this.backendsOf.delete(app);
    }
    for (const [backend, version] of held) this.setEntry(this.versions, this.changes.versions, backend, version);
  }

  /** Writes a record (null: none), split over several entries when long, and notes the keys it changed. */
  private setRecord(key: string, text: string | null): void {
    const entries = text === null ? [] : recordEntries(key, text);
    const keys = entries.map(([k]) => k);
    for (const old of this.entriesOf.get(key) ?? []) if (!keys.includes(old)) this.setEntry(this.rules, this.changes.rules, old, undefined);
    for (const [k, v] of entries) this.setEntry(this.rules, this.changes.rules, k, v);
    if (keys.length > 0) this.entriesOf.set(key, keys);
    else this.entriesOf.delete(key);
  }

  private setEntry(map: Map<string, string>, changed: Set<string>, key: string, value: string | undefined): void {
    if (map.get(key) === value) return;
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    changed.add(key);
  }
}

function emptyChanges(): { hosts: Set<string>; rules: Set<string>; wildcards: Set<string>; versions: Set<string> } {
  return { hosts: new Set(), rules: new Set(), wildcards: new Set(), versions: new Set() };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
