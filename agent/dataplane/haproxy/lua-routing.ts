/**
 * The HAProxy adapter's part for the Lua action (paths, per-route settings,
 * split policies): the pool backends of app versions other than the
 * default, rules.map (lua-records.ts) and versions.map (backend → version,
 * for X-Edgeroute-Version). Like the rest of the adapter it keeps a model of
 * what HAProxy holds, read back on every whole-table apply, and sends only
 * the difference.
 */
import type { AppRoute } from '../../core/routing-table.js';
import { RULES_MAP_FILE, VERSIONS_MAP_FILE, WILDCARDS_MAP_FILE } from './lua-loader.js';
import { appRecordBackends, readRecords, RULES_VERSION_KEY, type LuaPlan } from './lua-records.js';
import { LuaPlanner, type PlanInputs } from './lua-plan.js';
import { findMapFile, parseShowMap } from './runtime-plan.js';

/** Where the compiled split policies come from (policy-feed.ts). */
export interface PolicySource {
  /** The app's policy as a p: record, or null for none. */
  record(app: string): string | null;
  /** The apps whose policies matter (those with several versions). */
  watch(apps: readonly string[]): void;
  /** Called when a policy the source holds changed. */
  onChange(listener: () => void): void;
  /** The CIDR→region table as an x:regions record, or null when no policy needs it. */
  regions(): string | null;
}

type SendAll = (commands: readonly string[]) => Promise<string[]>;

export class LuaRouting {
  rulesFile: string | null = null;
  versionsFile: string | null = null;
  wildcardsFile: string | null = null;
  /** rules.map, versions.map and wildcards.map as HAProxy holds them. */
  private rules = new Map<string, string>();
  private versions = new Map<string, string>();
  private wildcards = new Map<string, string>();
  /** App → version → backend, for the versions other than the app's default. */
  readonly extra = new Map<string, Map<string, string>>();
  private bumps = 0;
  /** The plan, kept up to date change by change. */
  private readonly planner = new LuaPlanner();
  /** Keys the plan changed since they were last written; null: every key (after a read-back, a policy change). */
  private unwritten: { hosts: Set<string>; rules: Set<string>; wildcards: Set<string>; versions: Set<string> } | null = null;
  /** Apps with several versions: the policies watched. */
  private readonly multiVersion = new Set<string>();

  constructor(readonly policies: PolicySource | null) {}

  /** Finds the maps in `show map`; returns the commands that read them. */
  locate(showMap: string): string[] {
    this.rulesFile = findMapFile(showMap, RULES_MAP_FILE);
    this.versionsFile = findMapFile(showMap, VERSIONS_MAP_FILE);
    this.wildcardsFile = findMapFile(showMap, WILDCARDS_MAP_FILE);
    return [this.rulesFile, this.versionsFile, this.wildcardsFile].filter((f): f is string => f !== null).map((f) => `show map ${f}`);
  }

  /** The replies to locate()'s commands. */
  readBack(replies: readonly string[]): void {
    this.unwritten = null;
    let i = 0;
    this.rules = this.rulesFile === null ? new Map() : parseShowMap(replies[i++] ?? '');
    this.versions = this.versionsFile === null ? new Map() : parseShowMap(replies[i++] ?? '');
    this.wildcards = this.wildcardsFile === null ? new Map() : parseShowMap(replies[i++] ?? '');
  }

  /** Whether HAProxy's config has the Lua action (an older haproxy-conf does not). */
  get available(): boolean {
    return this.rulesFile !== null && this.versionsFile !== null;
  }

  /**
   * Keeps the extra backends HAProxy still agrees with, else learns them from
   * the a: records it holds (a restarted agent); also the default version's
   * backend of apps hosts.map sends to the Lua action (`assigned`: app → the
   * default version's backend, as learned from hosts.map).
   */
  learn(routes: ReadonlyMap<string, AppRoute>, pool: readonly string[], assigned: Map<string, string>): void {
    const taken = new Set(assigned.values());
    for (const [app, versions] of this.extra) {
      const route = routes.get(app);
      for (const [version, backend] of versions) {
        if (!route || !pool.includes(backend) || taken.has(backend) || version === route.defaultVersion || !(version in route.versions)) versions.delete(version);
        else taken.add(backend);
      }
      if (versions.size === 0) this.extra.delete(app);
    }
    for (const [key, text] of readRecords(this.rules)) {
      if (!key.startsWith('a:')) continue;
      const app = decodeURIComponent(key.slice(2));
      const route = routes.get(app);
      if (!route) continue;
      for (const [version, backend] of appRecordBackends(text)) {
        if (!(version in route.versions) || !pool.includes(backend) || taken.has(backend)) continue;
        if (version === route.defaultVersion) {
          if (assigned.has(app)) continue;
          assigned.set(app, backend);
        } else {
          if (this.extra.get(app)?.has(version)) continue;
          this.setExtra(app, version, backend);
        }
        taken.add(backend);
      }
    }
  }

  setExtra(app: string, version: string, backend: string): void {
    let versions = this.extra.get(app);
    if (!versions) this.extra.set(app, (versions = new Map()));
    versions.set(version, backend);
  }

  /** Every backend an extra version holds. */
  extraBackends(): Set<string> {
    const out = new Set<string>();
    for (const versions of this.extra.values()) for (const b of versions.values()) out.add(b);
    return out;
  }

  /** Version → backend of every placed version of the app, the default's first. */
  backendsOf(app: string, route: AppRoute, defaultBackend: string | undefined): Map<string, string> {
    const out = new Map<string, string>();
    if (defaultBackend !== undefined) out.set(route.defaultVersion, defaultBackend);
    for (const [version, backend] of this.extra.get(app) ?? []) out.set(version, backend);
    return out;
  }

  /**
   * The plan after a change of `apps` (their routes, or the backends they
   * hold); null: plans every app again (a whole apply, a policy change).
   */
  plan(routes: ReadonlyMap<string, AppRoute>, defaultBackend: (app: string) => string | undefined, apps: Iterable<string> | null): LuaPlan {
    const changed = apps === null ? null : new Set(apps);
    this.watchPolicies(routes, changed);
    const inputs: PlanInputs = {
      routes,
      backends: (app) => {
        const route = routes.get(app);
        return route ? this.backendsOf(app, route, defaultBackend(app)) : undefined;
      },
      policy: (app) => this.policies?.record(app) ?? null,
      regions: this.policies?.regions() ?? null,
    };
    if (changed === null) {
      this.planner.rebuild(inputs);
      this.unwritten = null;
    } else {
      const changes = this.planner.update(changed, inputs);
      if (this.unwritten !== null) for (const kind of ['hosts', 'rules', 'wildcards', 'versions'] as const) for (const key of changes[kind]) this.unwritten[kind].add(key);
    }
    return this.planner;
  }

  /** The hosts whose hosts.map target the last plans changed, since written; null: any host. */
  get changedHosts(): ReadonlySet<string> | null {
    return this.unwritten?.hosts ?? null;
  }

  /** Tells the policy source which apps have several versions, when that changes. */
  private watchPolicies(routes: ReadonlyMap<string, AppRoute>, apps: ReadonlySet<string> | null): void {
    if (!this.policies) return;
    let moved = false;
    if (apps === null) {
      const now = [...routes].filter(([, r]) => Object.keys(r.versions).length > 1).map(([app]) => app);
      moved = now.length !== this.multiVersion.size || now.some((app) => !this.multiVersion.has(app));
      this.multiVersion.clear();
      for (const app of now) this.multiVersion.add(app);
    } else {
      for (const app of apps) {
        const route = routes.get(app);
        const several = route !== undefined && Object.keys(route.versions).length > 1;
        if (several === this.multiVersion.has(app)) continue;
        moved = true;
        if (several) this.multiVersion.add(app);
        else this.multiVersion.delete(app);
      }
    }
    if (moved) this.policies.watch([...this.multiVersion]);
  }

  /**
   * Writes what the plan needs before hosts.map points hosts at the Lua
   * action: versions.map, the rules.map records that are new or changed,
   * wildcards.map, then the version bump. Only the keys the plans changed
   * since the last write, or every key after a read-back. Returns the errors.
   */
  async writeAhead(sendAll: SendAll): Promise<string[]> {
    if (!this.available) return [];
    const plan = this.planner;
    const pending = this.unwritten;
    const errors = await this.edit(sendAll, this.versionsFile!, this.versions, plan.versions, pending?.versions ?? null, true);
    errors.push(...(await this.edit(sendAll, this.rulesFile!, this.rules, plan.rules, pending?.rules ?? null, false)));
    // A wildcard going away stops at once (its app is gone or no longer claims it).
    if (this.wildcardsFile !== null) errors.push(...(await this.edit(sendAll, this.wildcardsFile, this.wildcards, plan.wildcards, pending?.wildcards ?? null, true)));
    if (this.dirty) errors.push(...(await this.bump(sendAll)));
    if (pending !== null) {
      // Keys HAProxy refused stay, to be written again; rules removed are removeStale's, after hosts.map.
      written(pending.versions, this.versions, plan.versions);
      written(pending.wildcards, this.wildcards, plan.wildcards);
      for (const key of [...pending.rules]) if (plan.rules.has(key) && this.rules.get(key) === plan.rules.get(key)) pending.rules.delete(key);
    }
    return errors;
  }

  /** Removes the records the plan no longer has (after hosts.map stopped sending hosts to them). */
  async removeStale(sendAll: SendAll): Promise<string[]> {
    if (!this.available) return [];
    const plan = this.planner;
    const candidates = this.unwritten === null ? [...this.rules.keys()] : [...this.unwritten.rules];
    const stale = candidates.filter((k) => k !== RULES_VERSION_KEY && !plan.rules.has(k) && this.rules.has(k));
    // hosts.map was edited before this: its changes are written; so are rules, but those HAProxy refuses now.
    const pending = this.unwritten ?? emptyChanges();
    this.unwritten = pending;
    pending.hosts.clear();
    written(pending.rules, this.rules, plan.rules);
    for (const k of stale) pending.rules.add(k);
    if (stale.length === 0) return [];
    const replies = await sendAll(stale.map((k) => `del map ${this.rulesFile} ${k}`));
    const errors: string[] = [];
    stale.forEach((k, i) => {
      const reply = (replies[i] ?? '').trim();
      if (reply === '' || /not found/i.test(reply)) {
        this.rules.delete(k);
        pending.rules.delete(k);
      } else errors.push(`del map ${k}: ${reply}`);
    });
    errors.push(...(await this.bump(sendAll)));
    return errors;
  }

  private dirty = false;

  /**
   * Upserts `desired` into the map (set, then add when absent); with
   * `prune`, deletes the rest. `keys`: only these may differ (null: any).
   */
  private async edit(sendAll: SendAll, file: string, model: Map<string, string>, desired: ReadonlyMap<string, string>, keys: ReadonlySet<string> | null, prune: boolean): Promise<string[]> {
    const sets: Array<[string, string]> = [];
    const dels: string[] = [];
    if (keys === null) {
      for (const [k, v] of desired) if (model.get(k) !== v) sets.push([k, v]);
      if (prune) for (const k of model.keys()) if (!desired.has(k)) dels.push(k);
    } else {
      for (const k of keys) {
        const v = desired.get(k);
        if (v !== undefined && model.get(k) !== v) sets.push([k, v]);
        else if (v === undefined && prune && model.has(k)) dels.push(k);
      }
    }
    if (sets.length === 0 && dels.length === 0) return [];
    if (file === this.rulesFile) this.dirty = true;
    const replies = await sendAll([...sets.map(([k, v]) => `set map ${file} ${k} ${v}`), ...dels.map((k) => `del map ${file} ${k}`)]);
    const errors: string[] = [];
    const adds: [string, string][] = [];
    sets.forEach(([k, v], i) => {
      const reply = (replies[i] ?? '').trim();
      if (reply === '') model.set(k, v);
      else if (/entry not found/i.test(reply)) adds.push([k, v]);
      else errors.push(`set map ${k}: ${reply}`);
    });
    dels.forEach((k, i) => {
      const reply = (replies[sets.length + i] ?? '').trim();
      if (reply === '' || /not found/i.test(reply)) model.delete(k);
      else errors.push(`del map ${k}: ${reply}`);
    });
    const addReplies = await sendAll(adds.map(([k, v]) => `add map ${file} ${k} ${v}`));
    adds.forEach(([k, v], i) => {
      const reply = (addReplies[i] ?? '').trim();
      if (reply === '') model.set(k, v);
      else errors.push(`add map ${k}: ${reply}`);
    });
    return errors;
  }

  /** Tells every Lua state to drop what it decoded. */
  private async bump(sendAll: SendAll): Promise<string[]> {
    const version = `${Date.now().toString(36)}.${++this.bumps}`;
    const errors = await this.edit(sendAll, this.rulesFile!, this.rules, new Map([[RULES_VERSION_KEY, version]]), null, false);
    this.dirty = false;
    return errors;
  }
}

function emptyChanges(): { hosts: Set<string>; rules: Set<string>; wildcards: Set<string>; versions: Set<string> } {
  return { hosts: new Set(), rules: new Set(), wildcards: new Set(), versions: new Set() };
}

/** Forgets the keys whose value HAProxy now holds as planned. */
function written(keys: Set<string>, model: ReadonlyMap<string, string>, plan: ReadonlyMap<string, string>): void {
  for (const key of [...keys]) if (model.get(key) === plan.get(key)) keys.delete(key);
}
