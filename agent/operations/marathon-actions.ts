/** The Marathon calls the operations make, with errors an operator can act on. */
import { appPath } from '../source/marathon/marathon-client.js';
import { parseAppResponse, parseTasksResponse } from '../core/marathon-apps.js';
import { isActiveTask } from '../core/lifecycle.js';
import type { MarathonApp, MarathonTask } from '../core/marathon-types.js';
import { OperationError, pause, say, type OperationContext } from './operation-context.js';

export async function readApp(ctx: OperationContext, appId: string): Promise<MarathonApp | null> {
  const body = await ctx.marathon.fetchApp(appId);
  if (body === null) return null;
  const parsed = parseAppResponse(body);
  const app = parsed.snapshot.apps[0];
  if (!app) throw new OperationError(`Marathon's answer for ${appId} is not an app: ${parsed.problems.map((p) => p.message).join('; ')}`);
  return app;
}

export async function requireApp(ctx: OperationContext, appId: string): Promise<MarathonApp> {
  const app = await readApp(ctx, appId);
  if (!app) throw new OperationError(`Marathon has no app ${appId}`);
  return app;
}

/** The active tasks among `taskIds`, with their apps; unknown ids are an error naming them. */
export async function findTasks(ctx: OperationContext, taskIds: readonly string[]): Promise<MarathonTask[]> {
  const body = await ctx.marathon.getJson('/v2/tasks');
  const { tasks } = parseTasksResponse(body);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const missing = taskIds.filter((id) => !byId.has(id));
  if (missing.length > 0) throw new OperationError(`Marathon has no running task ${missing.join(', ')}`);
  return taskIds.map((id) => byId.get(id) as MarathonTask);
}

export function activeTasks(app: MarathonApp): MarathonTask[] {
  return app.tasks.filter(isActiveTask);
}

/** `POST /v2/tasks/delete?scale=…`: with scale, Marathon lowers the app's instances instead of replacing the tasks. */
export async function killTasks(ctx: OperationContext, taskIds: readonly string[], scale: boolean): Promise<void> {
  const reply = await ctx.marathon.send('POST', `/v2/tasks/delete?scale=${scale}`, { ids: taskIds });
  if (reply.status === 409) {
    // The app is locked by a deployment; a kill must not wait behind it once the tasks are drained.
    const forced = await ctx.marathon.send('POST', `/v2/tasks/delete?scale=${scale}&force=true`, { ids: taskIds });
    if (forced.status < 300) return;
    throw marathonRefused('kill', forced);
  }
  if (reply.status >= 300) throw marathonRefused('kill', reply);
  say(ctx, 'kill', `Marathon is killing ${taskIds.length} task(s)${scale ? ' and scaling the app down' : ''}`);
}

export async function setInstances(ctx: OperationContext, appId: string, instances: number): Promise<void> {
  const reply = await ctx.marathon.send('PUT', `${appPath(appId)}?force=true`, { instances });
  if (reply.status >= 300) throw marathonRefused(`scale ${appId}`, reply);
}

/** Creates the app, or updates it when it exists. */
export async function deployApp(ctx: OperationContext, definition: Readonly<Record<string, unknown>> & { id: string }): Promise<void> {
  const exists = (await readApp(ctx, definition.id)) !== null;
  const reply = exists
    ? await ctx.marathon.send('PUT', `${appPath(definition.id)}?force=true`, definition)
    : await ctx.marathon.send('POST', '/v2/apps', definition);
  if (reply.status >= 300) throw marathonRefused(`deploy ${definition.id}`, reply);
}

/** Waits (bounded) until Marathon no longer lists the tasks; true when they are gone. */
export async function waitTasksGone(ctx: OperationContext, appId: string, taskIds: readonly string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const ids = new Set(taskIds);
  while (Date.now() < deadline && !ctx.signal?.aborted) {
    const app = await readApp(ctx, appId);
    if (!app || !app.tasks.some((t) => ids.has(t.id))) return true;
    await pause(ctx, 200);
  }
  return false;
}

function marathonRefused(what: string, reply: { status: number; body: unknown }): OperationError {
  const message = typeof reply.body === 'object' && reply.body !== null && 'message' in reply.body ? String((reply.body as { message: unknown }).message) : JSON.stringify(reply.body);
  return new OperationError(`Marathon refused to ${what} (HTTP ${reply.status}): ${message}`);
}
