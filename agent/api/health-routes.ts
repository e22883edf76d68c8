/** /healthz (the process answers) and /readyz (it routes with a fresh table). */
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';
import { EDGEROUTE_VERSION } from '../version.js';

export function readiness(deps: ApiDeps, now = Date.now()): string[] {
  const { reconciler } = deps;
  const reasons: string[] = [];
  const lastSyncAt = reconciler.stats.lastSyncAt;
  if (lastSyncAt === null) reasons.push('no successful sync with Marathon yet');
  else if (!deps.marathonConnected() && now - lastSyncAt > deps.readyMaxAgeMs) {
    reasons.push(`the Marathon event stream is down and the last sync was ${Math.round((now - lastSyncAt) / 1000)} s ago`);
  }
  const version = reconciler.table?.version ?? null;
  const unreachable = reconciler.dataPlaneUnreachable;
  if (unreachable) reasons.push(`${deps.dataPlane ?? 'nginx'} admin endpoint unreachable: ${unreachable}`);
  else if (version !== null && reconciler.pushedVersion !== version) reasons.push(`${deps.dataPlane ?? 'nginx'} has not acknowledged the current routing table`);
  return reasons;
}

export const healthRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.get(
      '/healthz',
      { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' }, version: { type: 'string' }, pluginVersion: { type: ['string', 'null'] } } } } } },
      async () => ({ status: 'ok', version: EDGEROUTE_VERSION, pluginVersion: deps.pluginVersion?.() ?? null }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          response: {
            200: { type: 'object', properties: { status: { type: 'string' } } },
            503: { type: 'object', properties: { status: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } } } },
          },
        },
      },
      async (_request, reply) => {
        const reasons = readiness(deps);
        if (reasons.length > 0) return reply.code(503).send({ status: 'not ready', reasons });
        return { status: 'ready' };
      },
    );
  };
