/** /v1/policies: read and write split policies, checked exactly as `edgeroute policy` checks them. */
import type { FastifyPluginAsync } from 'fastify';
import { checkPolicy } from '../policy/policy-check.js';
import { requireToken } from './auth.js';
import type { ApiDeps } from './deps.js';

const appParams = { type: 'object', required: ['app'], properties: { app: { type: 'string', minLength: 1, maxLength: 256 } } } as const;

export const policyRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const policies = deps.policies;
    app.addHook('onRequest', async (_request, reply) => {
      if (!policies) await reply.code(503).send({ error: 'the agent has no Redis (--redis); policies live there' });
    });
    const writeAccess = requireToken(deps.token);
    // Redis away (not connected yet, or down): say so, rather than a bare 500.
    app.setErrorHandler(async (error: Error & { statusCode?: number }, _request, reply) => {
      const status = error.statusCode;
      if (status !== undefined && status < 500) return reply.code(status).send({ error: error.message });
      return reply.code(503).send({ error: `Redis did not answer: ${error.message}` });
    });

    app.get('/v1/policies', async () => {
      const apps = await policies!.list();
      const texts = await Promise.all(apps.map((a) => policies!.get(a)));
      return { policies: Object.fromEntries(apps.map((a, i) => [a, texts[i] === null ? null : JSON.parse(texts[i] as string)])) };
    });

    app.get<{ Params: { app: string } }>('/v1/policies/:app', { schema: { params: appParams } }, async (request, reply) => {
      const text = await policies!.get(request.params.app);
      if (text === null) return reply.code(404).send({ error: `no policy for ${request.params.app}` });
      return JSON.parse(text);
    });

    app.put<{ Params: { app: string }; Body: unknown }>(
      '/v1/policies/:app',
      { onRequest: writeAccess, schema: { params: appParams, body: { type: 'object' } } },
      async (request, reply) => {
        const check = checkPolicy(request.body);
        if (!check.ok) return reply.code(400).send({ error: 'invalid policy', errors: check.errors });
        // The PUBLISH that follows reaches the feed through the agent's subscription.
        await policies!.set(request.params.app, JSON.stringify(check.policy));
        return { stored: policies!.key(request.params.app) };
      },
    );

    app.delete<{ Params: { app: string } }>('/v1/policies/:app', { onRequest: writeAccess, schema: { params: appParams } }, async (request, reply) => {
      if (!(await policies!.remove(request.params.app))) return reply.code(404).send({ error: `no policy for ${request.params.app}` });
      return { removed: policies!.key(request.params.app) };
    });
  };
