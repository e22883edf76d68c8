/**
 * Announce before kill: drain, kill, scale and restart. Each marks the tasks
 * draining, waits for every live routing node to stop routing to them and
 * finish their in-flight requests (or for the timeout), and only then asks
 * Marathon to kill them.
 */
import type { MarathonApp, MarathonTask } from '../core/marathon-types.js';
import { drainTasks, type DrainOutcome, type TaskRef } from './drain-wait.js';
import { activeTasks, findTasks, killTasks, requireApp, setInstances, waitTasksGone } from './marathon-actions.js';
import { waitForPublished } from './publication-wait.js';
import { OperationError, say, type DrainTimeouts, type OperationContext } from './operation-context.js';

export interface KillResult {
  readonly killed: readonly string[];
  readonly drain: DrainOutcome;
}

/** How long to wait for Marathon to stop listing killed tasks before lifting their marks anyway. */
const GONE_TIMEOUT_MS = 120_000;

/** Marks the tasks draining and waits for the fleet; they stay out of every upstream until `undrain` or the mark's TTL. */
export async function drain(ctx: OperationContext, taskIds: readonly string[], timeouts: DrainTimeouts): Promise<DrainOutcome> {
  const tasks = await findTasks(ctx, taskIds);
  return drainTasks(ctx, tasks.map(refOf), 'drain', timeouts);
}

export async function undrain(ctx: OperationContext, taskIds: readonly string[]): Promise<void> {
  await ctx.board.unmark(taskIds);
  say(ctx, 'drain', `lifted the drain of ${taskIds.join(', ')}`);
}

export async function kill(ctx: OperationContext, taskIds: readonly string[], scale: boolean, timeouts: DrainTimeouts): Promise<KillResult> {
  const tasks = await findTasks(ctx, taskIds);
  return drainAndKill(ctx, tasks.map(refOf), scale, scale ? 'kill --scale' : 'kill', timeouts);
}

/**
 * Sets the app's instances. Scaling in drains the tasks it picks first: ones
 * not serving yet, then the youngest (the warm ones keep serving).
 */
export async function scale(ctx: OperationContext, appId: string, instances: number, timeouts: DrainTimeouts): Promise<KillResult | null> {
  if (!Number.isInteger(instances) || instances < 0) throw new OperationError(`instances must be a whole number ≥ 0, not ${instances}`);
  const app = await requireApp(ctx, appId);
  const tasks = activeTasks(app);
  const surplus = tasks.length - instances;
  if (surplus <= 0) {
    await setInstances(ctx, appId, instances);
    say(ctx, 'scale', `${appId}: ${app.instances} → ${instances} instances; new tasks are published once they pass their delay and health checks`);
    return null;
  }
  const victims = pickScaleInVictims(app, surplus);
  say(ctx, 'scale', `${appId}: ${tasks.length} → ${instances} tasks; scaling in ${victims.map((t) => t.id).join(', ')}`);
  const result = await drainAndKill(ctx, victims.map(refOf), true, 'scale', timeouts);
  // Tasks still being staged may have made Marathon's count differ; set it outright.
  const after = await requireApp(ctx, appId);
  if (after.instances !== instances) await setInstances(ctx, appId, instances);
  return result;
}

/** Replaces every task, `batch` at a time; each batch's replacements are published on every node before the next batch is drained. */
export async function restart(ctx: OperationContext, appId: string, batch: number, timeouts: DrainTimeouts & { publishTimeoutMs: number }): Promise<void> {
  if (!Number.isInteger(batch) || batch < 1) throw new OperationError(`--batch must be a whole number ≥ 1, not ${batch}`);
  const app = await requireApp(ctx, appId);
  const old = activeTasks(app);
  const oldIds = new Set(old.map((t) => t.id));
  const started = Date.now();
  say(ctx, 'restart', `${appId}: replacing ${old.length} task(s), ${batch} at a time`);
  for (let i = 0; i < old.length; i += batch) {
    const group = old.slice(i, i + batch);
    say(ctx, 'restart', `batch ${i / batch + 1}/${Math.ceil(old.length / batch)}: ${group.map((t) => t.id).join(', ')}`);
    await drainAndKill(ctx, group.map(refOf), false, 'restart', timeouts);
    await waitForPublished(ctx, { appId, accept: (id) => !oldIds.has(id), count: i + group.length, warm: false, timeoutMs: timeouts.publishTimeoutMs });
  }
  say(ctx, 'restart', `${appId}: restarted ${old.length} task(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

export async function drainAndKill(ctx: OperationContext, tasks: readonly TaskRef[], scaleDown: boolean, operation: string, timeouts: DrainTimeouts): Promise<KillResult> {
  const outcome = await drainTasks(ctx, tasks, operation, timeouts);
  const ids = tasks.map((t) => t.taskId);
  await killTasks(ctx, ids, scaleDown);
  // The marks stay until Marathon stops listing the tasks: lifting them earlier would publish a dying task again.
  const byApp = new Map<string, string[]>();
  for (const t of tasks) byApp.set(t.appId, [...(byApp.get(t.appId) ?? []), t.taskId]);
  const gone = await Promise.all([...byApp].map(([app, appTasks]) => waitTasksGone(ctx, app, appTasks, GONE_TIMEOUT_MS)));
  if (gone.every(Boolean)) await ctx.board.unmark(ids);
  else say(ctx, 'kill', 'Marathon still lists some killed tasks; their drain marks stay until they expire');
  return { killed: ids, drain: outcome };
}

/** The tasks a scale-in removes: not yet running, then failing health, then the most recently started. */
export function pickScaleInVictims(app: MarathonApp, count: number): MarathonTask[] {
  const rank = (t: MarathonTask): number => {
    if (t.state !== 'TASK_RUNNING') return 0;
    if (t.healthCheckResults.some((r) => !r.alive)) return 1;
    if (app.healthCheckCount > 0 && t.healthCheckResults.length === 0) return 2;
    return 3;
  };
  const started = (t: MarathonTask): number => Date.parse(t.startedAt ?? t.stagedAt ?? '') || 0;
  return [...activeTasks(app)].sort((a, b) => rank(a) - rank(b) || started(b) - started(a) || (a.id < b.id ? -1 : 1)).slice(0, count);
}

function refOf(task: MarathonTask): TaskRef {
  return { taskId: task.id, appId: task.appId };
}
