/**
 * Tasks Marathon's event bus says are being killed or have ended. A task
 * never comes back from these states (a task id is never reused), so the
 * agent can take it out of its upstream as soon as the event arrives,
 * without waiting for a re-read of its app: the event is applied to the
 * snapshot the agent holds, and kept applied to every read of that app until
 * a read shows it too (the read was older than the event) or no longer lists
 * the task. It only ever takes a task out; publishing one waits for the
 * snapshot. Pure.
 */
import type { MarathonEvent } from './marathon-events.js';
import type { MarathonApp, MarathonTask } from './marathon-types.js';

/** What an event said of one task. */
export interface TaskEnd {
  readonly appId: string;
  readonly taskId: string;
  /** TASK_KILLING, or a terminal state. */
  readonly state: string;
}

const KILLING = 'TASK_KILLING';

/**
 * Mesos states after which a task never runs again. Not TASK_LOST,
 * TASK_UNREACHABLE or TASK_UNKNOWN: a partitioned agent's task may come back
 * from those.
 */
const TERMINAL_STATES: ReadonlySet<string> = new Set(['TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR']);

/** The task end an event reports: a status update to TASK_KILLING or a terminal state, or Marathon killing an unhealthy task. */
export function taskEndOf(event: MarathonEvent): TaskEnd | null {
  if (event.appId === null || event.taskId === null) return null;
  if (event.type === 'unhealthy_task_kill_event') return { appId: event.appId, taskId: event.taskId, state: KILLING };
  if (event.type !== 'status_update_event' || event.taskStatus === null) return null;
  return event.taskStatus === KILLING || TERMINAL_STATES.has(event.taskStatus) ? { appId: event.appId, taskId: event.taskId, state: event.taskStatus } : null;
}

/** How far along its end a state is: 0 still running (or starting), 1 being killed, 2 ended. */
function stage(state: string): number {
  return TERMINAL_STATES.has(state) ? 2 : state === KILLING ? 1 : 0;
}

/** Whether the app, as read, already shows the end (or no longer lists the task): the mark is no longer needed. */
export function endShown(app: MarathonApp | undefined, end: TaskEnd): boolean {
  const task = app?.tasks.find((t) => t.id === end.taskId);
  return task === undefined || stage(task.state) >= stage(end.state);
}

/** The app with each marked task in the state its event reported, where the app shows an earlier one; the same object when none. */
export function withTaskEnds(app: MarathonApp, ends: Iterable<TaskEnd>): MarathonApp {
  let tasks: MarathonTask[] | null = null;
  for (const end of ends) {
    if (end.appId !== app.id) continue;
    const list = tasks ?? app.tasks;
    const index = list.findIndex((t) => t.id === end.taskId);
    const task = list[index];
    if (task === undefined || stage(task.state) >= stage(end.state)) continue;
    tasks ??= [...app.tasks];
    tasks[index] = { ...task, state: end.state };
  }
  return tasks === null ? app : { ...app, tasks };
}
