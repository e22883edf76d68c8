// The Lua action's plan kept change by change must always equal luaPlan computed whole.
import { describe, expect, it } from 'vitest';
import type { AppRoute } from '../../agent/core/routing-table.js';
import { luaPlan } from '../../agent/dataplane/haproxy/lua-records.js';
import { LuaPlanner, type PlanInputs } from '../../agent/dataplane/haproxy/lua-plan.js';

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const APPS = ['/a', '/b', '/c', '/d', '/e', '/f', '/g', '/h'];
// Shared hosts, a wildcard, a host only some apps hold, one the runtime API cannot carry, and one whose record is split (long prefixes).
const HOSTS = ['shop.test', 'shop.test', 'api.test', '*.w.test', 'w.test', 'solo-{n}.test', 'bad host.test'];

function makeRoute(rand: () => number, id: string, step: number): AppRoute {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const vhosts = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 2) }, () => pick(HOSTS).replace('{n}', id.slice(1))))].sort();
  const route: { -readonly [K in keyof AppRoute]: AppRoute[K] } = {
    id,
    vhosts,
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: id, backends: [] } },
    hash: `h${step}`,
  };
  if (rand() < 0.3) route.versions = { ...route.versions, grey: { marathonAppId: `${id}-grey`, backends: [] } };
  if (rand() < 0.3) route.paths = Object.fromEntries(vhosts.map((h) => [h, rand() < 0.2 ? [`/${'x'.repeat(2500)}`, `/${'y'.repeat(2500)}`] : [pick(['/', '/api', '/v2'])]]));
  if (rand() < 0.2) route.settings = { stripPath: true };
  if (rand() < 0.1) route.settings = { balance: 'leastconn' };
  return route;
}

function placement(rand: () => number, route: AppRoute, pool: () => string): Map<string, string> {
  const out = new Map<string, string>();
  if (rand() < 0.15) return out;
  for (const version of Object.keys(route.versions).sort((a, b) => (a === route.defaultVersion ? -1 : b === route.defaultVersion ? 1 : a < b ? -1 : 1))) {
    if (version !== route.defaultVersion && rand() < 0.2) continue;
    out.set(version, pool());
  }
  return out;
}

describe('LuaPlanner', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])('equals luaPlan after every random change (seed %i)', (seed) => {
    const rand = random(seed * 104729);
    let next = 0;
    const pool = () => `pool-${++next}`;
    const routes = new Map<string, AppRoute>();
    const backends = new Map<string, Map<string, string>>();
    let policyGeneration = 0;
    let regions: string | null = null;
    const inputs = (): PlanInputs => ({
      routes,
      backends: (app) => backends.get(app),
      policy: (app) => (app === '/a' || app === '/c' ? `d=stable|s=${policyGeneration}|r=grey` : null),
      regions,
    });
    const planner = new LuaPlanner();
    planner.rebuild(inputs());
    for (let step = 0; step < 300; step++) {
      const changed = new Set<string>();
      for (let n = Math.floor(rand() * 3); n >= 0; n--) {
        const app = APPS[Math.floor(rand() * APPS.length)] as string;
        changed.add(app);
        const roll = rand();
        if (roll < 0.15) {
          routes.delete(app);
          backends.delete(app);
        } else if (roll < 0.35 && routes.has(app)) {
          backends.set(app, placement(rand, routes.get(app)!, pool));
        } else {
          const route = makeRoute(rand, app, step);
          routes.set(app, route);
          backends.set(app, placement(rand, route, pool));
        }
      }
      if (rand() < 0.1) regions = regions === null ? `e=10.0.0.0%2F8:eu${step}` : null;
      const whole = rand() < 0.05;
      if (whole) {
        // A policy changed: the whole plan again, as the adapter does.
        policyGeneration++;
        planner.rebuild(inputs());
      } else planner.update(changed, inputs());
      const expected = luaPlan(routes, (app) => backends.get(app), inputs().policy, regions);
      const context = `seed ${seed}, step ${step}`;
      expect(planner.hosts, context).toEqual(expected.hosts);
      expect(planner.rules, context).toEqual(expected.rules);
      expect(planner.wildcards, context).toEqual(expected.wildcards);
      const versions = new Map<string, string>();
      for (const app of routes.keys()) for (const [version, backend] of backends.get(app) ?? []) versions.set(backend, version);
      expect(planner.versions, context).toEqual(versions);
    }
  });

  it('says which keys a change touched, and touches no other app', () => {
    const routes = new Map<string, AppRoute>();
    const backends = new Map<string, Map<string, string>>();
    for (let i = 0; i < 1000; i++) {
      const id = `/app-${i}`;
      routes.set(id, { id, vhosts: [`app-${i}.test`], defaultVersion: 'stable', versions: { stable: { marathonAppId: id, backends: [] } }, hash: 'h' });
      backends.set(id, new Map([['stable', `pool-${i}`]]));
    }
    const asked = new Set<string>();
    const inputs: PlanInputs = {
      routes,
      backends: (app) => {
        asked.add(app);
        return backends.get(app);
      },
      policy: () => null,
      regions: null,
    };
    const planner = new LuaPlanner();
    planner.rebuild(inputs);
    // /app-7 gets a second version: its host goes to the Lua action, with a site and an app record.
    routes.set('/app-7', { ...routes.get('/app-7')!, versions: { stable: { marathonAppId: '/app-7', backends: [] }, grey: { marathonAppId: '/app-7-grey', backends: [] } } });
    backends.set('/app-7', new Map([['stable', 'pool-7'], ['grey', 'pool-x']]));
    asked.clear();
    const changes = planner.update(['/app-7'], inputs);
    expect([...asked]).toEqual(['/app-7']);
    expect(changes.hosts).toEqual(new Set(['app-7.test']));
    expect(changes.rules).toEqual(new Set(['h:app-7.test', 'a:%2Fapp-7']));
    expect(changes.versions).toEqual(new Set(['pool-x']));
    expect(planner.hosts.get('app-7.test')).toBe('edgeroute-lua');
  });
});
