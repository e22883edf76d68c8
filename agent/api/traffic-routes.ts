/**
 * Traffic per app and version: /v1/traffic (this node: live numbers, and
 * the last half hour's plots with `history`), /v1/traffic/fleet (one app on
 * every node that published it, and their sum), /v1/rollouts (rollouts
 * under way or just finished, with the share set and the share measured).
 */
import type { FastifyPluginAsync } from 'fastify';
import { fleetAppTraffic, type AppTraffic } from '../core/traffic.js';
import type { AppHistory } from '../observe/traffic-history.js';
import type { ApiDeps } from './deps.js';

/** Plots are sent for at most this many apps at once (a page of the dashboard). */
const MAX_HISTORY_APPS = 100;
/** Finished rollouts stay on the dashboard this long. */
const FINISHED_ROLLOUT_SHOWN_MS = 10 * 60_000;

const appList = (text: string | undefined): string[] | null =>
  text === undefined || text === '' ? null : [...new Set(text.split(',').map((a) => a.trim()).filter((a) => a !== ''))];

export const trafficRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const defaultOf = (id: string) => deps.reconciler.table?.apps[id]?.defaultVersion ?? null;
    const versionsOf = (id: string) => Object.keys(deps.reconciler.table?.apps[id]?.versions ?? {});

    app.get<{ Querystring: { app?: string; history?: string } }>(
      '/v1/traffic',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: {
              app: { type: 'string', description: 'comma-separated logical apps (default: every app that served requests)' },
              history: { type: 'string', enum: ['true', 'false', '1', '0'], description: "the last half hour's plots too (with app)" },
            },
          },
        },
      },
      async (request, reply) => {
        const sampler = deps.traffic ?? null;
        if (!sampler) return reply.code(503).send({ error: 'this agent samples no traffic' });
        const only = appList(request.query.app);
        const withHistory = only !== null && (request.query.history === 'true' || request.query.history === '1');
        if (withHistory && only.length > MAX_HISTORY_APPS) return reply.code(400).send({ error: `history is sent for at most ${MAX_HISTORY_APPS} apps at once` });
        const history = sampler.history;
        const summaries = history ? history.summaries(defaultOf, only ? new Set(only) : undefined) : [];
        const byApp = new Map(summaries.map((s) => [s.app, s]));
        const apps: Array<AppTraffic & { history?: AppHistory }> = (only ?? summaries.map((s) => s.app)).map((id) => {
          const summary = byApp.get(id) ?? { app: id, defaultVersion: defaultOf(id), requestsPerSecond: 0, versions: [] };
          if (!withHistory || !history) return summary;
          const names = [...new Set([...versionsOf(id), ...summary.versions.map((v) => v.version)])];
          return { ...summary, history: history.history(id, names) };
        });
        const opts = sampler.opts;
        return {
          node: deps.nodeId ?? null,
          at: new Date().toISOString(),
          sampledAt: sampler.lastSampleAt === null ? null : new Date(sampler.lastSampleAt).toISOString(),
          error: sampler.lastError,
          dataPlane: deps.dataPlane ?? 'nginx',
          latency: history?.latencyKind ?? null,
          intervalSeconds: opts.intervalMs / 1000,
          slotSeconds: opts.slotMs / 1000,
          windowSeconds: (opts.slotMs * opts.slots) / 1000,
          series: history ? { ...history.size, overflowed: history.overflowed } : null,
          apps,
        };
      },
    );

    app.get<{ Querystring: { app: string } }>(
      '/v1/traffic/fleet',
      { schema: { querystring: { type: 'object', required: ['app'], properties: { app: { type: 'string', minLength: 1 } } } } },
      async (request, reply) => {
        if (!deps.fleetTraffic || !deps.nodes) return reply.code(503).send({ error: 'the agent has no Redis (--redis); the fleet lives there' });
        const fleet = await deps.nodes.fleet();
        const published = await deps.fleetTraffic(
          request.query.app,
          fleet.filter((n) => n.live).map((n) => n.nodeId),
        );
        return { app: request.query.app, nodes: published, total: fleetAppTraffic(request.query.app, published) };
      },
    );

    app.get('/v1/rollouts', async (_request, reply) => {
      if (!deps.rollouts) return reply.code(503).send({ error: 'the agent has no Redis (--redis); rollouts are recorded there' });
      const table = deps.reconciler.table;
      // A rollout runs two versions of its app; single-version apps are not read.
      const candidates = table ? Object.values(table.apps).filter((r) => Object.keys(r.versions).length > 1).map((r) => r.id) : [];
      const records = await deps.rollouts(candidates);
      const now = Date.now();
      const shown = records.filter((r) => !['done', 'aborted'].includes(r.phase) || now - (r.updatedAt ?? r.startedAt) < FINISHED_ROLLOUT_SHOWN_MS);
      const measured = deps.traffic?.history?.summaries(defaultOf, new Set(shown.map((r) => r.app))) ?? [];
      return {
        rollouts: shown.map((r) => {
          const traffic = measured.find((m) => m.app === r.app);
          const share = traffic?.versions.find((v) => v.version === r.to.version)?.share ?? null;
          return {
            app: r.app,
            from: r.from,
            to: r.to,
            phase: r.phase,
            percent: r.percent,
            steps: r.steps ?? null,
            shares: r.shares ?? [],
            by: r.by,
            splitBy: r.splitBy,
            startedAt: new Date(r.startedAt).toISOString(),
            updatedAt: r.updatedAt === undefined ? null : new Date(r.updatedAt).toISOString(),
            // The share of this node's requests the new version served over the live window.
            measuredPercent: share === null ? null : Math.round(share * 1000) / 10,
          };
        }),
      };
    });
  };
