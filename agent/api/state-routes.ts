/** /v1/state: apps → versions → backends, with weights and the reason for each state. */
import type { FastifyPluginAsync } from 'fastify';
import { checkPolicyText } from '../policy/policy-check.js';
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

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const stateRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.get('/v1/nodes', async (_request, reply) => {
      if (!deps.nodes) return reply.code(503).send({ error: 'the agent has no Redis (--redis); the fleet lives there' });
      return { self: deps.nodes.nodeId, ttlMs: deps.nodes.ttlMs, nodes: await deps.nodes.fleet() };
    });

    app.get<{ Querystring: { app?: string } }>(
      '/v1/state',
      { schema: { querystring: { type: 'object', properties: { app: { type: 'string', description: 'only this logical app' } } } } },
      async (request) => {
        const { reconciler } = deps;
        const table = reconciler.table;
        const only = request.query.app;
        const all = table ? (only === undefined ? Object.values(table.apps) : [table.apps[only]].filter((r) => r !== undefined)) : [];
        const routes = all.sort((a, b) => (a.id < b.id ? -1 : 1));
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
          problems: reconciler.problems.map((p) => ({ app: p.appId, message: p.message })),
          certificates: deps.certificates?.() ?? [],
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
