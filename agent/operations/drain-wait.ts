/**
 * Marks tasks draining and waits until every live routing node has taken
 * them out of its upstreams and finished the requests it was serving to them.
 * Nodes whose heartbeat stopped are not waited for; a node that stays live
 * but silent is waited for until the timeout.
 */
import { readFleet } from '../fleet/node-registry.js';
import type { DrainMark } from '../fleet/redis-drains.js';
import { checkAborted, pause, say, type DrainTimeouts, type OperationContext } from './operation-context.js';

export interface TaskRef {
  readonly taskId: string;
  readonly appId: string;
}

export interface DrainOutcome {
  /** True when every live node acknowledged with nothing in flight; false after the timeout. */
  readonly drained: boolean;
  readonly waitedMs: number;
  /** Live nodes that had not finished when the wait ended. */
  readonly pending: readonly string[];
  readonly marks: readonly DrainMark[];
  /** After the timeout: requests and upgraded connections the pending nodes were still serving, cut when the tasks die. */
  readonly cut?: number;
}

const POLL_MS = 100;

export async function drainTasks(ctx: OperationContext, tasks: readonly TaskRef[], operation: string, timeouts: DrainTimeouts): Promise<DrainOutcome> {
  const at = Date.now();
  const marks: DrainMark[] = tasks.map((t) => ({ taskId: t.taskId, appId: t.appId, operation, by: ctx.by, at, expiresAt: at + timeouts.markTtlMs }));
  await ctx.board.mark(marks);
  say(ctx, 'drain', `${tasks.length} task(s) marked draining: ${tasks.map((t) => t.taskId).join(', ')}`);
  return waitForDrained(ctx, marks, timeouts.drainTimeoutMs);
}

export async function waitForDrained(ctx: OperationContext, marks: readonly DrainMark[], timeoutMs: number): Promise<DrainOutcome> {
  const started = Date.now();
  const ids = marks.map((m) => m.taskId);
  let lastLine = '';
  const skipped = new Set<string>();
  for (;;) {
    checkAborted(ctx);
    const now = Date.now();
    const fleet = await readFleet(ctx.redis, ctx.prefix, now);
    for (const node of fleet) {
      if (!node.live && !skipped.has(node.nodeId) && now - node.heartbeatAt < 10 * 60_000) {
        skipped.add(node.nodeId);
        say(ctx, 'drain', `node ${node.nodeId} is not live (last heartbeat ${Math.round((now - node.heartbeatAt) / 1000)} s ago); not waiting for it`);
      }
    }
    const live = fleet.filter((n) => n.live);
    const boards = await ctx.board.acks(ids);
    const pending: string[] = [];
    const states: string[] = [];
    /** Requests and upgraded connections (WebSockets) the pending nodes still serve on the drained tasks. */
    let stillInFlight = 0;
    for (const node of live) {
      let inflight = 0;
      let missing = 0;
      for (const id of ids) {
        const ack = boards.get(id)?.acks.get(node.nodeId);
        if (!ack || !ack.settled) missing++;
        else inflight += ack.inflight;
      }
      if (missing === 0 && inflight === 0) states.push(`${node.nodeId} drained`);
      else {
        pending.push(node.nodeId);
        stillInFlight += inflight;
        states.push(missing > 0 ? `${node.nodeId} waiting for its table` : `${node.nodeId} ${inflight} in flight`);
      }
    }
    const line = live.length === 0 ? 'no live routing node registered' : states.join(', ');
    if (line !== lastLine) {
      say(ctx, 'drain', line, { pending });
      lastLine = line;
    }
    const waitedMs = Date.now() - started;
    if (pending.length === 0) return { drained: true, waitedMs, pending, marks };
    if (waitedMs >= timeoutMs) {
      const cut = stillInFlight === 1 ? '1 request or connection' : `${stillInFlight} requests or connections`;
      say(ctx, 'drain', `gave up waiting after ${Math.round(waitedMs / 1000)} s for ${pending.join(', ')}; going on, which cuts ${cut} still in flight (WebSockets included)`, { pending, cut: stillInFlight });
      return { drained: false, waitedMs, pending, marks, cut: stillInFlight };
    }
    await pause(ctx, POLL_MS);
  }
}
