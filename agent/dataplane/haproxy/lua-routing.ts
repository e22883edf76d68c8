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
import { appRecordBackends, luaPlan, readRecords, RULES_VERSION_KEY, type LuaPlan } from './lua-records.js';
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

  plan(routes: ReadonlyMap<string, AppRoute>, defaultBackend: (app: string) => string | undefined): LuaPlan {
    this.policies?.watch([...routes].filter(([, r]) => Object.keys(r.versions).length > 1).map(([app]) => app));
    return luaPlan(
      routes,
      (app) => {
        const route = routes.get(app);
        return route ? this.backendsOf(app, route, defaultBackend(app)) : undefined;
      },
      (app) => this.policies?.record(app) ?? null,
      this.policies?.regions() ?? null,
    );
  }

  /**
   * Writes what `plan` needs before hosts.map points hosts at the Lua
   * action: versions.map in full, the rules.map records that are new or
   * changed, then the version bump. Returns the errors.
   */
  async writeAhead(sendAll: SendAll, plan: LuaPlan, routes: ReadonlyMap<string, AppRoute>, defaultBackend: (app: string) => string | undefined): Promise<string[]> {
    if (!this.available) return [];
    const versions = new Map<string, string>();
    for (const [app, route] of routes) for (const [version, backend] of this.backendsOf(app, route, defaultBackend(app))) versions.set(backend, version);
    const errors = await this.edit(sendAll, this.versionsFile!, this.versions, versions, true);
    const changed = await this.edit(sendAll, this.rulesFile!, this.rules, plan.rules, false);
    errors.push(...changed);
    // A wildcard going away stops at once (its app is gone or no longer claims it).
    if (this.wildcardsFile !== null) errors.push(...(await this.edit(sendAll, this.wildcardsFile, this.wildcards, plan.wildcards, true)));
    if (this.dirty) errors.push(...(await this.bump(sendAll)));
    return errors;
  }

  /** Removes the records `plan` no longer has (after hosts.map stopped sending hosts to them). */
  async removeStale(sendAll: SendAll, plan: LuaPlan): Promise<string[]> {
    if (!this.available) return [];
    const stale = [...this.rules.keys()].filter((k) => k !== RULES_VERSION_KEY && !plan.rules.has(k));
    if (stale.length === 0) return [];
    const replies = await sendAll(stale.map((k) => `del map ${this.rulesFile} ${k}`));
    const errors: string[] = [];
    stale.forEach((k, i) => {
      const reply = (replies[i] ?? '').trim();
      if (reply === '' || /not found/i.test(reply)) this.rules.delete(k);
      else errors.push(`del map ${k}: ${reply}`);
    });
    errors.push(...(await this.bump(sendAll)));
    return errors;
  }

  private dirty = false;

  /** Upserts `desired` into the map (set, then add when absent); with `prune`, deletes the rest. */
  private async edit(sendAll: SendAll, file: string, model: Map<string, string>, desired: ReadonlyMap<string, string>, prune: boolean): Promise<string[]> {
    const sets = [...desired].filter(([k, v]) => model.get(k) !== v);
    const dels = prune ? [...model.keys()].filter((k) => !desired.has(k)) : [];
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
    const errors = await this.edit(sendAll, this.rulesFile!, this.rules, new Map([[RULES_VERSION_KEY, version]]), false);
    this.dirty = false;
    return errors;
  }
}
