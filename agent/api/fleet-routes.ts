/**
 * /v1/nodes: every routing node in the registry beside this one: its data
 * plane, its table and split policies against this node's, its last push,
 * the drains waiting for its acknowledgement, its heartbeat's age; a node
 * out of step says why.
 */
import type { FastifyPluginAsync } from 'fastify';
import { fleetView, type DrainAcks } from '../core/fleet-view.js';
import type { ApiDeps } from './deps.js';

export const fleetRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.get('/v1/nodes', async (_request, reply) => {
      if (!deps.nodes) return reply.code(503).send({ error: 'the agent has no Redis (--redis); the fleet lives there' });
      const now = Date.now();
      const [nodes, drains] = await Promise.all([deps.nodes.fleet(now), deps.drains ? deps.drains().catch((): DrainAcks[] => []) : Promise.resolve([])]);
      const self = deps.fleetSelf?.() ?? { group: null, policies: null };
      const view = fleetView(nodes, { nodeId: deps.nodes.nodeId, tableVersion: deps.reconciler.pushedVersion, ...self }, drains, now);
      return {
        self: deps.nodes.nodeId,
        ttlMs: deps.nodes.ttlMs,
        at: new Date(now).toISOString(),
        outOfStep: view.filter((n) => n.outOfStep).length,
        nodes: view,
      };
    });
  };
