/**
 * The life of one backend: when a running task may be published, with what
 * weight, and why not yet. Pure: the clock and the remembered health are
 * inputs. Times come from Marathon's own timestamps (startedAt, firstSuccess),
 * so every routing node reaches the same verdict at the same moment.
 */
import { parseIsoMillis } from './iso-time.js';
import type { MarathonTask } from './marathon-types.js';

export type BackendState = 'starting' | 'waiting' | 'unhealthy' | 'draining' | 'warming' | 'published';

/** What the agents remember of a task's health (in Redis), for when Marathon forgets it. */
export interface RememberedHealth {
  readonly healthy: boolean;
  /** While healthy: when the task became healthy (ISO-8601), the earliest seen. */
  readonly since: string | null;
}

export interface PublicationSettings {
  readonly publishDelayMs: number;
  readonly warmupMs: number;
  /** 1 ramps linearly; higher values ramp faster at first. */
  readonly warmupAggression: number;
  readonly weight: number;
  readonly hasHealthChecks: boolean;
}

export interface TaskVerdict {
  readonly state: BackendState;
  readonly reason: string;
  /** Weight to route with; 0 when not routed. */
  readonly weight: number;
  readonly publishedAt: number | null;
  /** When the verdict changes by the clock alone (a delay ends, a warm-up ends). */
  readonly changesAt: number | null;
  /** Health worth remembering, when Marathon reported some. */
  readonly observation: RememberedHealth | null;
}

/** Tasks in these states are not listed as backends at all. */
const ACTIVE_STATES = new Set(['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING']);

export function isActiveTask(task: MarathonTask): boolean {
  return ACTIVE_STATES.has(task.state);
}

/**
 * `drainReason`: set when ops announced that the task is about to be killed
 * (a drain mark in Redis); the task leaves the upstream whatever its health.
 */
export function judgeTask(
  task: MarathonTask,
  settings: PublicationSettings,
  remembered: RememberedHealth | undefined,
  now: number,
  drainReason?: string,
): TaskVerdict {
  if (task.state === 'TASK_KILLING') return idle('draining', 'draining: Marathon is killing the task');
  if (drainReason !== undefined && isActiveTask(task)) return idle('draining', `draining: ${drainReason}`);
  if (task.state !== 'TASK_RUNNING') return idle('starting', `starting: ${task.state}`);

  const startedAt = parseTime(task.startedAt) ?? parseTime(task.stagedAt);
  let healthySince: number | null = null;
  let observation: RememberedHealth | null = null;
  let note = '';
  if (settings.hasHealthChecks) {
    const health = currentHealth(task, remembered);
    observation = health.observation;
    if (health.healthy && health.remembered) note = ' (health remembered; Marathon reports no result)';
    if (health.healthy === false) return { ...idle('unhealthy', health.reason), observation };
    if (health.healthy === null) return { ...idle('waiting', health.reason), observation };
    healthySince = health.sinceMs ?? startedAt;
  }

  const delayEnds = startedAt === null ? null : startedAt + settings.publishDelayMs;
  const publishedAt = Math.max(delayEnds ?? -Infinity, healthySince ?? -Infinity);
  if (!Number.isFinite(publishedAt)) {
    // No timestamp at all (never seen from Marathon for a running task): no delay to wait for.
    return { state: 'published', reason: `published${note}`, weight: settings.weight, publishedAt: null, changesAt: null, observation };
  }
  if (now < publishedAt) {
    const seconds = Math.ceil((publishedAt - now) / 1000);
    return { state: 'waiting', reason: `waiting ${seconds} s of publish delay`, weight: 0, publishedAt: null, changesAt: publishedAt, observation };
  }
  const elapsed = now - publishedAt;
  if (settings.warmupMs > 0 && elapsed < settings.warmupMs) {
    const weight = warmupWeight(settings.weight, elapsed / settings.warmupMs, settings.warmupAggression);
    const percent = Math.floor((100 * elapsed) / settings.warmupMs);
    return {
      state: 'warming',
      reason: `warming: ${percent}% of ${settings.warmupMs / 1000} s${note}`,
      weight,
      publishedAt,
      changesAt: publishedAt + settings.warmupMs,
      observation,
    };
  }
  return { state: 'published', reason: `published${note}`, weight: settings.weight, publishedAt, changesAt: null, observation };
}

/** max(minimum, weight × progress^(1/aggression)); the minimum is 1% of the weight and at least 1. */
export function warmupWeight(weight: number, progress: number, aggression: number): number {
  const minimum = Math.max(1, Math.ceil(weight / 100));
  const ramped = Math.round(weight * Math.pow(Math.min(1, Math.max(0, progress)), 1 / aggression));
  return Math.max(minimum, ramped);
}

interface HealthReading {
  /** null: not known yet. */
  readonly healthy: boolean | null;
  readonly since: string | null;
  /** `since` in ms (each timestamp is parsed once: 100,000 tasks' worth every full sync). */
  readonly sinceMs: number | null;
  readonly reason: string;
  readonly observation: RememberedHealth | null;
  /** True when the verdict rests on memory, not on a result from Marathon. */
  readonly remembered: boolean;
}

/**
 * Marathon's results when it has any (every check alive = healthy, any explicit
 * failure = unhealthy); otherwise what the agents remember, so a leader
 * failover that resets health to "unknown" does not unpublish healthy tasks.
 */
function currentHealth(task: MarathonTask, remembered: RememberedHealth | undefined): HealthReading {
  const results = task.healthCheckResults;
  if (results.length > 0) {
    if (results.some((r) => !r.alive)) {
      return { healthy: false, since: null, sinceMs: null, reason: 'unhealthy: a Marathon health check is failing', observation: { healthy: false, since: null }, remembered: false };
    }
    // The latest firstSuccess of the checks.
    let reported: string | null = null;
    let reportedSince: number | null = null;
    for (const result of results) {
      const ms = parseTime(result.firstSuccess);
      if (ms !== null && (reportedSince === null || ms > reportedSince)) {
        reported = result.firstSuccess;
        reportedSince = ms;
      }
    }
    const rememberedSince = remembered?.healthy ? parseTime(remembered.since) : null;
    const fromMemory = rememberedSince !== null && (reportedSince === null || rememberedSince < reportedSince);
    const since = fromMemory ? (remembered?.since ?? null) : reported;
    return { healthy: true, since, sinceMs: fromMemory ? rememberedSince : reportedSince, reason: 'healthy', observation: { healthy: true, since }, remembered: false };
  }
  if (remembered?.healthy) {
    return { healthy: true, since: remembered.since, sinceMs: parseTime(remembered.since), reason: 'healthy', observation: null, remembered: true };
  }
  if (remembered && !remembered.healthy) {
    return { healthy: false, since: null, sinceMs: null, reason: 'unhealthy (remembered; Marathon reports no result)', observation: null, remembered: true };
  }
  return { healthy: null, since: null, sinceMs: null, reason: 'waiting for the first health check', observation: null, remembered: false };
}

function idle(state: BackendState, reason: string): TaskVerdict {
  return { state, reason, weight: 0, publishedAt: null, changesAt: null, observation: null };
}

function parseTime(iso: string | null): number | null {
  if (iso === null) return null;
  const ms = parseIsoMillis(iso);
  return Number.isNaN(ms) ? null : ms;
}
