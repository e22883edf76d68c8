/** /v1/state: apps → versions → backends, with weights and the reason for each state. */
import type { FastifyPluginAsync } from 'fastify';
import { checkPolicyText } from '../policy/policy-check.js';
import type { AppRoute } from '../core/routing-table.js';
import type { ApiDeps } from './deps.js';
import { EDGEROUTE_VERSION } from '../version.js';
import { shownSettings } from '../core/route-settings.js';

interface PolicyView {
  policy: unknown;
  error: string | null;
}

async function policiesOf(deps: ApiDeps, apps: readonly string[]): Promise<Map<string, PolicyView>> {
  const views = new Map<string, PolicyView>();
  if (!deps.policies || apps.length === 0) return views;
  try {
    const texts = await Promise.all(apps.map((app) => deps.policies?.get(app) ?? null));
    apps.forEach((app, i) => {
      const text = texts[i];
      if (text === null || text === undefined) return;
      const check = checkPolicyText(text);
      views.set(app, check.ok ? { policy: check.policy, error: null } : { policy: safeParse(text), error: check.errors.join('; ') });
    });
  } catch {
    // Redis away: the state shows no policies rather than failing.
  }
  return views;
}

/** The dashboard's search: the app, its hosts, versions, Marathon apps, tasks and their addresses. */
function matchesNeedle(route: AppRoute, needle: string, statuses: (id: string) => ReadonlyArray<{ taskId: string; address: string | null }>): boolean {
  const hay = [route.id, ...route.vhosts, ...Object.entries(route.versions).flatMap(([name, v]) => [name, v.marathonAppId])];
  if (hay.some((h) => h.toLowerCase().includes(needle))) return true;
  return statuses(route.id).some((s) => s.taskId.toLowerCase().includes(needle) || (s.address ?? '').toLowerCase().includes(needle));
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const stateRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Querystring: { app?: string; q?: string; offset?: number; limit?: number } }>(
      '/v1/state',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: {
              app: { type: 'string', description: 'only this logical app' },
              // A page of a large table (the dashboard's): apps matching q, from offset, at most limit.
              q: { type: 'string', description: 'only apps whose id, host, version, Marathon app, task id or address contains this (any case)' },
              offset: { type: 'integer', minimum: 0 },
              limit: { type: 'integer', minimum: 1, maximum: 1000 },
            },
          },
        },
      },
      async (request) => {
        const { reconciler } = deps;
        const table = reconciler.table;
        const only = request.query.app;
        const all = table ? (only === undefined ? Object.values(table.apps) : [table.apps[only]].filter((r) => r !== undefined)) : [];
        const needle = (request.query.q ?? '').trim().toLowerCase();
        const matching = needle === '' ? all : all.filter((route) => matchesNeedle(route, needle, (id) => reconciler.statusesOf(id)));
        const sorted = matching.sort((a, b) => (a.id < b.id ? -1 : 1));
        const offset = request.query.offset ?? 0;
        const routes = request.query.limit === undefined && offset === 0 ? sorted : sorted.slice(offset, offset + (request.query.limit ?? sorted.length));
        const policies = await policiesOf(
          deps,
          routes.filter((r) => Object.keys(r.versions).length > 1).map((r) => r.id),
        );
        return {
          edgeroute: { version: EDGEROUTE_VERSION, pluginVersion: deps.pluginVersion?.() ?? null },
          // Which data plane this node runs, and the table it holds (nginxVersion stays, for older readers).
          dataPlane: { kind: deps.dataPlane ?? 'nginx', holds: reconciler.pushedVersion },
          version: table?.version ?? null,
          nginxVersion: reconciler.pushedVersion,
          lastSyncAt: reconciler.stats.lastSyncAt === null ? null : new Date(reconciler.stats.lastSyncAt).toISOString(),
          marathon: { url: deps.marathonUrl(), connected: deps.marathonConnected() },
          redis: { configured: deps.redisConnected() !== null, connected: deps.redisConnected() === true },
          // How many apps the table has, how many match q; `apps` is the page asked for.
          appCount: all.length,
          matched: matching.length,
          offset,
          problems: reconciler.problems.map((p) => ({ app: p.appId, message: p.message })),
          certificates: deps.certificates?.() ?? [],
          acme: deps.acme?.() ?? null,
          apps: routes.map((route) => {
            const statuses = reconciler.statusesOf(route.id);
            return {
              id: route.id,
              vhosts: route.vhosts,
              // Host → path prefixes, and the per-route settings (edgeroute.* labels) in force,
              // basic auth's realm and users without their password hashes.
              paths: route.paths ?? Object.fromEntries(route.vhosts.map((host) => [host, ['/']])),
              settings: shownSettings(route.settings),
              defaultVersion: route.defaultVersion,
              policy: policies.get(route.id)?.policy ?? null,
              policyError: policies.get(route.id)?.error ?? null,
              versions: Object.entries(route.versions).map(([name, version]) => ({
                name,
                marathonAppId: version.marathonAppId,
                backends: statuses
                  .filter((s) => s.version === name)
                  .map((s) => ({
                    taskId: s.taskId,
                    address: s.address,
                    port: s.port,
                    state: s.state,
                    reason: s.reason,
                    weight: s.weight,
                    baseWeight: s.baseWeight,
                    publishedAt: s.publishedAt === null ? null : new Date(s.publishedAt).toISOString(),
                  })),
              })),
            };
          }),
        };
      },
    );
  };
