/** The agent's HTTP API: one encapsulated fastify plugin per resource. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { DASHBOARD_PATHS, dashboardRoutes } from './dashboard-routes.js';
import type { ApiDeps } from './deps.js';
import { feedRoutes } from './feed-routes.js';
import { healthRoutes } from './health-routes.js';
import { metricsRoutes } from './metrics-routes.js';
import { policyRoutes } from './policy-routes.js';
import { stateRoutes } from './state-routes.js';
import { requireToken } from './auth.js';
import { operationRoutes } from './operation-routes.js';
import { fleetRoutes } from './fleet-routes.js';
import { trafficRoutes } from './traffic-routes.js';

/** Probes from the layer in front, and the dashboard's files (they hold no data). */
const OPEN_PATHS = new Set(['/healthz', '/readyz', ...DASHBOARD_PATHS]);

export async function buildApi(deps: ApiDeps, log: Logger): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: 1024 * 1024 });
  // Probes and scrapes arrive every few seconds: requests are not logged, problems are.
  const quiet = { logLevel: 'warn' as const };
  if (deps.readsNeedToken) {
    const readAccess = requireToken(deps.token, { allowQuery: true });
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      const path = request.url.split('?')[0] ?? '';
      if (OPEN_PATHS.has(path)) return;
      await readAccess(request, reply);
    });
  }
  await app.register(healthRoutes(deps), quiet);
  await app.register(stateRoutes(deps), quiet);
  await app.register(fleetRoutes(deps), quiet);
  await app.register(trafficRoutes(deps), quiet);
  await app.register(policyRoutes(deps), quiet);
  await app.register(operationRoutes(deps));
  await app.register(metricsRoutes(deps), quiet);
  await app.register(feedRoutes(deps), quiet);
  await app.register(dashboardRoutes, quiet);
  return app;
}

/** "HOST:PORT" or ":PORT" (all addresses); port 0 picks a free one. */
export function parseListenAddress(listen: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+))?:(\d{1,5})$/.exec(listen.trim());
  if (!match) throw new Error(`--listen "${listen}" is not HOST:PORT or :PORT`);
  return { host: (match[1] ?? '0.0.0.0').replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}
