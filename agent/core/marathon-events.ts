/**
 * Parses one event from Marathon's event bus. The agent does not act on the
 * event's content (the snapshot is the truth); it only needs to know whether
 * the event can change routing and which app it names.
 */
import { arrayOf, isObject, stringOr } from './json-guards.js';
import { appIdSegments, MAX_APP_ID_LENGTH } from './marathon-types.js';

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
  const named = appIdOr(body.appId) ?? appIdOr(body.runSpecId) ?? appIdOr(appDefinition?.id);
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

/**
 * Events that need everything read again: a group changed. Not
 * event_stream_attached, which says a client attached to the bus: this
 * agent's own attach is a full read already (event-handling.ts), and
 * another client's changes nothing; read again on it, the agent started
 * (and reconnected) with two full reads, 10,000 apps each at scale.
 */
const FULL_RESYNC_EVENT_TYPES = ['group_change_success'];

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

/**
 * Past this many apps one event asks for a full resync: one listing costs
 * less than hundreds of app reads at once (a group deployment's plan can name
 * thousands).
 */
export const MAX_APPS_PER_EVENT = 64;

/** The apps to re-read for this event, or null when only a full resync will do. */
export function appsToResync(event: MarathonEvent): readonly string[] | null {
  if (!PER_APP_EVENT_TYPES.has(event.type)) return null;
  return event.appIds.length > 0 && event.appIds.length <= MAX_APPS_PER_EVENT ? event.appIds : null;
}

/** Event types counted under their own name, at most; later new names count as "other". */
export const MAX_COUNTED_EVENT_TYPES = 64;
const EVENT_TYPE_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The metrics label for an event type. The types come from the event bus,
 * so anything may arrive there: names that no Marathon event could have, and
 * more new names than `MAX_COUNTED_EVENT_TYPES`, share "other" rather than
 * each growing a metric series. `counted` holds the names counted so far.
 */
export function eventTypeLabel(type: string, counted: ReadonlySet<string>): string {
  if (ROUTING_EVENT_TYPES.has(type) || counted.has(type)) return type;
  return EVENT_TYPE_NAME.test(type) && counted.size < MAX_COUNTED_EVENT_TYPES ? type : 'other';
}

/** An app id as events carry it; empty, oversized or pathless ids name no app (a full resync covers them). */
function appIdOr(value: unknown): string | null {
  return typeof value === 'string' && value.length <= MAX_APP_ID_LENGTH && appIdSegments(value) !== null ? value : null;
}

/** Deployment plans name apps in `steps[].actions[].app` (current) or `steps[].app` (documented sample). */
function planApps(plan: unknown): string[] {
  if (!isObject(plan)) return [];
  const apps = new Set<string>();
  for (const step of arrayOf(plan.steps)) {
    if (!isObject(step)) continue;
    const app = appIdOr(step.app);
    if (app !== null) apps.add(app);
    for (const action of arrayOf(step.actions)) {
      const named = isObject(action) ? appIdOr(action.app) : null;
      if (named !== null) apps.add(named);
    }
  }
  return [...apps];
}
