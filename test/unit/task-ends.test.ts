import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../agent/core/marathon-events.js';
import { endShown, taskEndOf, withTaskEnds } from '../../agent/core/task-ends.js';
import type { MarathonApp, MarathonTask } from '../../agent/core/marathon-types.js';

function event(body: Record<string, unknown>) {
  const parsed = parseEvent(undefined, JSON.stringify(body));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.event;
}

function task(id: string, state: string): MarathonTask {
  return { id, appId: '/web', host: '10.0.0.1', state, ports: [31000], ipAddresses: [], startedAt: null, stagedAt: null, version: null, healthCheckResults: [] };
}

function app(...tasks: MarathonTask[]): MarathonApp {
  return { id: '/web', labels: {}, instances: tasks.length, networkMode: 'host', ports: [], healthCheckCount: 0, taskKillGracePeriodSeconds: null, version: null, tasks };
}

describe('task ends from events', () => {
  it('reads a kill or a terminal status from status_update_event, and a kill from unhealthy_task_kill_event', () => {
    const update = (taskStatus: string) => taskEndOf(event({ eventType: 'status_update_event', appId: '/web', taskId: 'web.1', taskStatus }));
    expect(update('TASK_KILLING')).toEqual({ appId: '/web', taskId: 'web.1', state: 'TASK_KILLING' });
    for (const state of ['TASK_KILLED', 'TASK_FINISHED', 'TASK_FAILED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR']) expect(update(state)?.state).toBe(state);
    // A task may come back from these, or they publish: the snapshot decides.
    for (const state of ['TASK_RUNNING', 'TASK_STAGING', 'TASK_LOST', 'TASK_UNREACHABLE', 'TASK_UNKNOWN']) expect(update(state)).toBeNull();
    expect(taskEndOf(event({ eventType: 'unhealthy_task_kill_event', appId: '/web', taskId: 'web.1' }))).toEqual({ appId: '/web', taskId: 'web.1', state: 'TASK_KILLING' });
    expect(taskEndOf(event({ eventType: 'status_update_event', taskId: 'web.1', taskStatus: 'TASK_KILLED' }))).toBeNull();
    expect(taskEndOf(event({ eventType: 'deployment_info', plan: { steps: [{ actions: [{ app: '/web' }] }] } }))).toBeNull();
  });

  it('applies an end only where the app shows an earlier state, and says when a read shows it', () => {
    const read = app(task('web.1', 'TASK_RUNNING'), task('web.2', 'TASK_RUNNING'));
    const killing = { appId: '/web', taskId: 'web.1', state: 'TASK_KILLING' };
    const ended = withTaskEnds(read, [killing]);
    expect(ended.tasks.map((t) => t.state)).toEqual(['TASK_KILLING', 'TASK_RUNNING']);
    expect(read.tasks[0]?.state).toBe('TASK_RUNNING');
    expect(endShown(read, killing)).toBe(false);
    expect(endShown(ended, killing)).toBe(true);
    // Already killing, or ended: the same object back; a later state is never undone.
    expect(withTaskEnds(ended, [killing])).toBe(ended);
    const killed = app(task('web.1', 'TASK_KILLED'));
    expect(withTaskEnds(killed, [killing])).toBe(killed);
    expect(withTaskEnds(ended, [{ ...killing, state: 'TASK_KILLED' }]).tasks[0]?.state).toBe('TASK_KILLED');
    // Another app's end, or a task not listed: untouched; a task no longer listed (or no app) shows the end.
    expect(withTaskEnds(read, [{ ...killing, appId: '/api' }])).toBe(read);
    expect(endShown(app(task('web.2', 'TASK_RUNNING')), killing)).toBe(true);
    expect(endShown(undefined, killing)).toBe(true);
  });
});
