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

    // Policies typed by hand into Redis may not be JSON: such a one is listed
    // apart (with its text), never a reason to fail the others.
    app.get('/v1/policies', async () => {
      const apps = await policies!.list();
      const texts = await Promise.all(apps.map((a) => policies!.get(a)));
      const valid: Record<string, unknown> = {};
      const invalid: Record<string, { error: string; text: string }> = {};
      apps.forEach((a, i) => {
        const text = texts[i];
        if (text === null || text === undefined) return;
        const parsed = parseStored(text);
        if (parsed.ok) valid[a] = parsed.policy;
        else invalid[a] = { error: parsed.error, text };
      });
      return Object.keys(invalid).length === 0 ? { policies: valid } : { policies: valid, invalid };
    });

    app.get<{ Params: { app: string } }>('/v1/policies/:app', { schema: { params: appParams } }, async (request, reply) => {
      const text = await policies!.get(request.params.app);
      if (text === null) return reply.code(404).send({ error: `no policy for ${request.params.app}` });
      const parsed = parseStored(text);
      if (!parsed.ok) return reply.code(422).send({ error: parsed.error, text });
      return parsed.policy;
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

function parseStored(text: string): { ok: true; policy: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, policy: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `the stored policy is not valid JSON: ${(err as Error).message}` };
  }
}
