/**
 * Waits until new tasks are published on every live routing node, as each
 * node's agent sees it (its /v1/state, with nginx holding that table). Nodes
 * without an API cannot be asked; when no node has one, Marathon's own view
 * (running, and healthy where checked) stands in.
 */
import { readFleet, type FleetNode } from '../fleet/node-registry.js';
import { readRoutingLabels } from '../core/labels.js';
import type { MarathonApp } from '../core/marathon-types.js';
import { readApp } from './marathon-actions.js';
import { checkAborted, OperationError, pause, say, type OperationContext } from './operation-context.js';

export interface PublicationWanted {
  readonly appId: string;
  /** Which tasks count (e.g. not the old ones being replaced). */
  readonly accept: (taskId: string) => boolean;
  readonly count: number;
  /** Also past warm-up (state "published", not "warming"). */
  readonly warm: boolean;
  readonly timeoutMs: number;
}

interface StateAnswer {
  version?: string | null;
  nginxVersion?: string | null;
  apps?: Array<{ versions?: Array<{ marathonAppId?: string; backends?: Array<{ taskId?: string; state?: string }> }> }>;
}

export async function waitForPublished(ctx: OperationContext, wanted: PublicationWanted): Promise<void> {
  const started = Date.now();
  const states = wanted.warm ? new Set(['published']) : new Set(['published', 'warming']);
  const what = wanted.warm ? 'published and warm' : 'published';
  const silent = new Set<string>();
  let lastLine = '';
  for (;;) {
    checkAborted(ctx);
    const app = await readApp(ctx, wanted.appId);
    if (!app) throw new OperationError(`Marathon has no app ${wanted.appId}`);
    const logicalApp = logicalAppOf(app);
    const live = (await readFleet(ctx.redis, ctx.prefix)).filter((n) => n.live);
    const asked = live.filter((n) => n.apiUrl !== null);
    for (const node of live) {
      if (node.apiUrl === null && !silent.has(node.nodeId)) {
        silent.add(node.nodeId);
        say(ctx, 'publish', `node ${node.nodeId} has no agent API (--listen); cannot confirm publication there`);
      }
    }
    const counts: Array<[string, number]> = [];
    if (asked.length === 0) counts.push(['Marathon', readyInMarathon(app, wanted.accept)]);
    for (const node of asked) counts.push([node.nodeId, await publishedOn(ctx, node, logicalApp, wanted.appId, wanted.accept, states)]);
    const line = `${counts.map(([node, n]) => `${node} ${Math.min(n, wanted.count)}/${wanted.count}`).join(', ')} ${what}`;
    if (line !== lastLine) {
      say(ctx, 'publish', line);
      lastLine = line;
    }
    if (counts.every(([, n]) => n >= wanted.count)) return;
    if (Date.now() - started > wanted.timeoutMs) {
      throw new OperationError(`new tasks of ${wanted.appId} not ${what} after ${Math.round(wanted.timeoutMs / 1000)} s (${line})`);
    }
    await pause(ctx, 200);
  }
}

function logicalAppOf(app: MarathonApp): string {
  const labels = readRoutingLabels(app.labels);
  return labels.ok && labels.routed ? (labels.value.app ?? app.id) : app.id;
}

async function publishedOn(
  ctx: OperationContext,
  node: FleetNode,
  logicalApp: string,
  appId: string,
  accept: (taskId: string) => boolean,
  states: ReadonlySet<string>,
): Promise<number> {
  let answer: StateAnswer;
  try {
    const res = await fetch(`${node.apiUrl}/v1/state?app=${encodeURIComponent(logicalApp)}`, {
      headers: ctx.apiToken ? { authorization: `Bearer ${ctx.apiToken}` } : {},
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return 0;
    }
    answer = (await res.json()) as StateAnswer;
  } catch {
    return 0;
  }
  // The agent's table counts only once its nginx holds it.
  if (answer.version !== answer.nginxVersion) return 0;
  let count = 0;
  for (const entry of answer.apps ?? []) {
    for (const version of entry.versions ?? []) {
      if (version.marathonAppId !== appId) continue;
      for (const backend of version.backends ?? []) if (backend.taskId && accept(backend.taskId) && states.has(backend.state ?? '')) count++;
    }
  }
  return count;
}

function readyInMarathon(app: MarathonApp, accept: (taskId: string) => boolean): number {
  return app.tasks.filter(
    (t) => accept(t.id) && t.state === 'TASK_RUNNING' && (app.healthCheckCount === 0 || (t.healthCheckResults.length > 0 && t.healthCheckResults.every((r) => r.alive))),
  ).length;
}
