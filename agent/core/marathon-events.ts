/**
 * Parses one event from Marathon's event bus. The agent does not act on the
 * event's content (the snapshot is the truth); it only needs to know whether
 * the event can change routing and which app it names.
 */
import { arrayOf, isObject, stringOr } from './json-guards.js';

export interface MarathonEvent {
  readonly type: string;
  /** The app the event names, when it names one (appId, runSpecId, appDefinition.id, a deployment's first app). */
  readonly appId: string | null;
  /** Every app the event names (a deployment plan can name several). */
  readonly appIds: readonly string[];
  readonly taskId: string | null;
  readonly taskStatus: string | null;
  readonly timestamp: string | null;
}

export type ParsedEvent = { ok: true; event: MarathonEvent } | { ok: false; message: string };

/**
 * `eventName` is the SSE `event:` field; Marathon ≤ 1.4 sent `data:` lines
 * only, so the JSON's own `eventType` is the fallback.
 */
export function parseEvent(eventName: string | undefined, data: string): ParsedEvent {
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch (err) {
    return { ok: false, message: `event data is not JSON: ${(err as Error).message}` };
  }
  if (!isObject(body)) return { ok: false, message: 'event data is not a JSON object' };
  const type = stringOr(body.eventType, null) ?? (eventName && eventName !== 'message' ? eventName : null);
  if (type === null) return { ok: false, message: 'event has no eventType' };
  const appDefinition = isObject(body.appDefinition) ? body.appDefinition : null;
  const named = stringOr(body.appId, null) ?? stringOr(body.runSpecId, null) ?? stringOr(appDefinition?.id, null);
  const appIds = named !== null ? [named] : planApps(body.plan);
  return {
    ok: true,
    event: {
      type,
      appId: appIds[0] ?? null,
      appIds,
      taskId: stringOr(body.taskId, null) ?? stringOr(body.instanceId, null),
      taskStatus: stringOr(body.taskStatus, null),
      timestamp: stringOr(body.timestamp, null),
    },
  };
}

export function affectsRouting(event: MarathonEvent): boolean {
  return ROUTING_EVENT_TYPES.has(event.type);
}

/** Events that need everything read again: a stream (re)attached, a group changed. */
const FULL_RESYNC_EVENT_TYPES = ['event_stream_attached', 'group_change_success'];

/**
 * Events that say which apps they concern can be handled by re-reading those
 * apps only; the others (a stream attached, a group changed) need everything.
 */
const PER_APP_EVENT_TYPES: ReadonlySet<string> = new Set([
  'status_update_event',
  'instance_changed_event',
  'health_status_changed_event',
  'instance_health_changed_event',
  'failed_health_check_event',
  'unhealthy_task_kill_event',
  'unhealthy_instance_kill_event',
  'api_post_event',
  'deployment_info',
  'deployment_step_success',
  'deployment_step_failure',
  'deployment_success',
  'deployment_failed',
  'app_terminated_event',
]);

/** Event types after which the routing table may differ. Everything else is ignored quietly. */
export const ROUTING_EVENT_TYPES: ReadonlySet<string> = new Set([...PER_APP_EVENT_TYPES, ...FULL_RESYNC_EVENT_TYPES]);

/** The apps to re-read for this event, or null when only a full resync will do. */
export function appsToResync(event: MarathonEvent): readonly string[] | null {
  return PER_APP_EVENT_TYPES.has(event.type) && event.appIds.length > 0 ? event.appIds : null;
}

/** Deployment plans name apps in `steps[].actions[].app` (current) or `steps[].app` (documented sample). */
function planApps(plan: unknown): string[] {
  if (!isObject(plan)) return [];
  const apps = new Set<string>();
  for (const step of arrayOf(plan.steps)) {
    if (!isObject(step)) continue;
    if (typeof step.app === 'string') apps.add(step.app);
    for (const action of arrayOf(step.actions)) {
      if (isObject(action) && typeof action.app === 'string') apps.add(action.app);
    }
  }
  return [...apps];
}
