/**
 * /v1/drain, /v1/kill, /v1/scale, /v1/restart, /v1/rollout: the CLI's
 * announce-before-kill operations, run by this agent (token required). The
 * answer streams the progress as JSON lines and ends with
 * {"done": true} or {"error": "..."}; closing the request aborts the waits.
 * GET /v1/drains lists the current drain marks with every node's ack.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { OperationError, type OperationContext, type Progress } from '../operations/operation-context.js';
import { drain, kill, restart, scale, undrain } from '../operations/task-operations.js';
import { abortRollout, DEFAULT_ROLLOUT, rollout, SPLIT_KEY_PATTERN } from '../operations/rollout.js';
import { requireToken } from './auth.js';
import type { ApiDeps } from './deps.js';

const timeoutProps = {
  drainTimeoutSeconds: { type: 'number', minimum: 0, default: 60 },
  markTtlSeconds: { type: 'number', minimum: 1, default: 900 },
} as const;
const taskList = { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 512 } } as const;
const appId = { type: 'string', minLength: 1, maxLength: 512 } as const;
const publishTimeout = { type: 'number', minimum: 1, default: 300 } as const;

/** A JSON body with these required fields and these optional ones, plus the drain timeouts; nothing else. */
function bodySchema(required: Record<string, object>, optional: Record<string, object>) {
  return {
    body: { type: 'object', required: Object.keys(required), additionalProperties: false, properties: { ...required, ...optional, ...timeoutProps } },
  };
}

interface Timeouts {
  drainTimeoutSeconds: number;
  markTtlSeconds: number;
}

function timeouts(body: Timeouts): { drainTimeoutMs: number; markTtlMs: number } {
  return { drainTimeoutMs: body.drainTimeoutSeconds * 1000, markTtlMs: body.markTtlSeconds * 1000 };
}

export const operationRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const operations = deps.operations;
    app.addHook('onRequest', async (_request, reply) => {
      if (!operations) await reply.code(503).send({ error: 'the agent has no Redis (--redis); drains are announced there' });
    });
    const writeAccess = requireToken(deps.token);

    /** Runs `work` with a context whose progress streams to the client. */
    const stream = (request: FastifyRequest, reply: FastifyReply, work: (ctx: OperationContext) => Promise<unknown>) => {
      const out = new PassThrough();
      const aborter = new AbortController();
      let finished = false;
      reply.raw.on('close', () => {
        if (!finished) aborter.abort();
      });
      const ctx = operations!({ report: (p: Progress) => out.write(`${JSON.stringify(p)}\n`), signal: aborter.signal });
      work(ctx)
        .then((result) => out.end(`${JSON.stringify({ done: true, result: result ?? null })}\n`))
        .catch((err: Error) => {
          if (!(err instanceof OperationError)) request.log.error({ err }, 'operation failed');
          out.end(`${JSON.stringify({ error: err.message })}\n`);
        })
        .finally(() => {
          finished = true;
        });
      return reply.type('application/x-ndjson').send(out);
    };

    app.get('/v1/drains', async () => ({ drains: await deps.drains!() }));

    app.post<{ Body: { tasks: string[]; lift: boolean } & Timeouts }>(
      '/v1/drain',
      {
        onRequest: writeAccess,
        schema: bodySchema({ tasks: taskList }, { lift: { type: 'boolean', default: false } }),
      },
      (request, reply) => stream(request, reply, (ctx) => (request.body.lift ? undrain(ctx, request.body.tasks) : drain(ctx, request.body.tasks, timeouts(request.body)))),
    );

    app.post<{ Body: { tasks: string[]; scale: boolean } & Timeouts }>(
      '/v1/kill',
      {
        onRequest: writeAccess,
        schema: bodySchema({ tasks: taskList }, { scale: { type: 'boolean', default: false } }),
      },
      (request, reply) => stream(request, reply, (ctx) => kill(ctx, request.body.tasks, request.body.scale, timeouts(request.body))),
    );

    app.post<{ Body: { app: string; instances: number } & Timeouts }>(
      '/v1/scale',
      {
        onRequest: writeAccess,
        schema: bodySchema({ app: appId, instances: { type: 'integer', minimum: 0 } }, {}),
      },
      (request, reply) => stream(request, reply, (ctx) => scale(ctx, request.body.app, request.body.instances, timeouts(request.body))),
    );

    app.post<{ Body: { app: string; batch: number; publishTimeoutSeconds: number } & Timeouts }>(
      '/v1/restart',
      {
        onRequest: writeAccess,
        schema: bodySchema({ app: appId }, { batch: { type: 'integer', minimum: 1, default: 1 }, publishTimeoutSeconds: publishTimeout }),
      },
      (request, reply) =>
        stream(request, reply, (ctx) =>
          restart(ctx, request.body.app, request.body.batch, { ...timeouts(request.body), publishTimeoutMs: request.body.publishTimeoutSeconds * 1000 }),
        ),
    );

    app.post<{ Body: { app: string; to?: Record<string, unknown>; abort: boolean; steps: number[]; stepWaitSeconds: number; by: string; publishTimeoutSeconds: number } & Timeouts }>(
      '/v1/rollout',
      {
        onRequest: writeAccess,
        schema: bodySchema(
          { app: appId },
          {
            to: { type: 'object', description: 'the new version: a Marathon app definition' },
            abort: { type: 'boolean', default: false },
            steps: { type: 'array', maxItems: 20, items: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 100 }, default: [...DEFAULT_ROLLOUT.steps] },
            stepWaitSeconds: { type: 'number', minimum: 0, default: DEFAULT_ROLLOUT.stepWaitMs / 1000 },
            by: { type: 'string', pattern: SPLIT_KEY_PATTERN, default: DEFAULT_ROLLOUT.by },
            publishTimeoutSeconds: publishTimeout,
          },
        ),
      },
      async (request, reply) => {
        const body = request.body;
        if (!body.abort && body.to === undefined) return reply.code(400).send({ error: 'give "to" (the new app definition) or "abort": true' });
        const opts = { ...timeouts(body), steps: body.steps, stepWaitMs: body.stepWaitSeconds * 1000, by: body.by, publishTimeoutMs: body.publishTimeoutSeconds * 1000 };
        return stream(request, reply, (ctx) => (body.abort ? abortRollout(ctx, body.app, opts) : rollout(ctx, body.app, body.to, opts)));
      },
    );
  };
