/** /metrics in Prometheus text. */
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';

export const metricsRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.get('/metrics', async (_request, reply) => {
      deps.metrics.marathonConnected.set(deps.marathonConnected() ? 1 : 0);
      deps.metrics.redisConnected.set(deps.redisConnected() ? 1 : 0);
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    });
  };
