/**
 * What drain, kill, scale, restart and rollout need, whether the CLI or the
 * agent API runs them: Marathon, the drain board and fleet in Redis, who is
 * asking, and somewhere to report progress.
 */
import type { Redis } from 'ioredis';
import type { MarathonClient } from '../source/marathon/marathon-client.js';
import type { DrainBoard } from '../fleet/redis-drains.js';
import type { RedisPolicies } from '../fleet/redis-policies.js';

/** One line of progress: `step` names the phase ("drain", "kill", "publish", "traffic", ...). */
export interface Progress {
  readonly step: string;
  readonly message: string;
  readonly at: number;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface OperationContext {
  readonly marathon: MarathonClient;
  readonly redis: Redis;
  readonly prefix: string;
  readonly board: DrainBoard;
  readonly policies: RedisPolicies;
  /** user@host, written into drain marks and logs. */
  readonly by: string;
  /** Token for reading the agents' APIs (their /v1/state), when they need one. */
  readonly apiToken: string | null;
  report(progress: Progress): void;
  /** Aborts waits early (Ctrl-C, a closed API request). */
  readonly signal?: AbortSignal;
}

export interface DrainTimeouts {
  /** Give up waiting for acknowledgements after this long, and go on. */
  readonly drainTimeoutMs: number;
  /** How long a mark lasts if nothing lifts it. */
  readonly markTtlMs: number;
}

export const DEFAULT_DRAIN_TIMEOUTS: DrainTimeouts = { drainTimeoutMs: 60_000, markTtlMs: 15 * 60_000 };

export function say(ctx: OperationContext, step: string, message: string, detail?: Record<string, unknown>): void {
  ctx.report({ step, message, at: Date.now(), ...(detail ? { detail } : {}) });
}

/** Resolves after `ms`, or at once when the operation is aborted. */
export function pause(ctx: OperationContext, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ctx.signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', done);
      resolve();
    }
    ctx.signal?.addEventListener('abort', done);
  });
}

export function checkAborted(ctx: OperationContext): void {
  if (ctx.signal?.aborted) throw new OperationError('aborted');
}

/** A failure the operator should read as is (no stack). */
export class OperationError extends Error {}
