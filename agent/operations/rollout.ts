/**
 * Blue-green rollout across two Marathon apps of one logical app: pin traffic
 * to the old version with a policy, deploy the new one, wait until it is
 * published and warm on every routing node, move users over in percentage
 * steps, make it the default, then drain the old version's tasks and scale it
 * to zero. The plan and its progress are kept in Redis (`<prefix>rollout:<app>`),
 * so `--abort` can roll back from wherever the rollout stopped.
 */
import { parseAppsResponse } from '../core/marathon-apps.js';
import { readRoutingLabels } from '../core/labels.js';
import type { MarathonApp } from '../core/marathon-types.js';
import { drainAndKill } from './task-operations.js';
import { activeTasks, deployApp, readApp, setInstances } from './marathon-actions.js';
import { waitForPublished } from './publication-wait.js';
import { checkAborted, OperationError, pause, say, type DrainTimeouts, type OperationContext } from './operation-context.js';

export interface RolloutOptions extends DrainTimeouts {
  /** Percentages of users moved to the new version before it becomes the default (each < 100). */
  readonly steps: readonly number[];
  /** How long each step holds before the next. */
  readonly stepWaitMs: number;
  /** The percentage rule's key: "ip", "cookie:NAME" or "header:NAME". */
  readonly by: string;
  readonly publishTimeoutMs: number;
}

/** What keeps a user on one version during a rollout: the policy's percentage `by`. */
export const SPLIT_KEY_PATTERN = '^(ip|cookie:.+|header:.+)$';

export const DEFAULT_ROLLOUT: Omit<RolloutOptions, keyof DrainTimeouts> = { steps: [10, 50], stepWaitMs: 10_000, by: 'ip', publishTimeoutMs: 300_000 };

type Phase = 'deploying' | 'shifting' | 'switched' | 'draining' | 'done' | 'aborting' | 'aborted';

export interface RolloutRecord {
  readonly app: string;
  readonly from: { readonly appId: string; readonly version: string; readonly instances: number };
  readonly to: { readonly appId: string; readonly version: string; readonly instances: number };
  /** The policy in force before the rollout (text), restored by --abort. */
  readonly previousPolicy: string | null;
  /** The percentage rule's key ("ip", "cookie:NAME", "header:NAME"). */
  readonly splitBy: string;
  readonly by: string;
  readonly startedAt: number;
  phase: Phase;
  percent: number;
  /** The percentages it moves through (absent from records older than the field). */
  readonly steps?: readonly number[];
  /** Each share it set, when (the dashboard shows them beside the share measured). */
  shares?: Array<{ readonly percent: number; readonly at: number }>;
  /** When the record was last written (ms). */
  updatedAt?: number;
}

export type AppDefinition = Readonly<Record<string, unknown>> & { readonly id: string };

export async function rollout(ctx: OperationContext, app: string, definition: unknown, opts: RolloutOptions): Promise<RolloutRecord> {
  const target = checkDefinition(app, definition);
  const targetLabels = routingLabels(target.labels);
  const existing = await readRecord(ctx, app);
  if (existing && !['done', 'aborted'].includes(existing.phase)) {
    throw new OperationError(`a rollout of ${app} is already under way (${existing.from.appId} → ${existing.to.appId}, ${existing.phase}); finish it or run rollout ${app} --abort`);
  }
  const from = await currentVersion(ctx, app, target.id);
  if (from.version === targetLabels.version) throw new OperationError(`${target.id} has version "${targetLabels.version}", the same as the running ${from.app.id}; give it another edgeroute.version`);
  for (const step of opts.steps) if (!(step > 0 && step < 100)) throw new OperationError(`--steps takes percentages between 0 and 100, not ${step}`);

  const record: RolloutRecord = {
    app,
    from: { appId: from.app.id, version: from.version, instances: from.app.instances },
    to: { appId: target.id, version: targetLabels.version, instances: typeof target.instances === 'number' ? target.instances : 1 },
    previousPolicy: await ctx.policies.get(app),
    splitBy: opts.by,
    by: ctx.by,
    startedAt: Date.now(),
    phase: 'deploying',
    percent: 0,
    steps: opts.steps,
    shares: [],
  };
  await saveRecord(ctx, record);
  say(ctx, 'rollout', `${app}: ${record.from.appId} (${record.from.version}, ${record.from.instances} instances) → ${record.to.appId} (${record.to.version}, ${record.to.instances} instances)`);

  // Pinned before the new version exists, so it takes no request before its turn.
  await setSplit(ctx, record, 0);
  await deployApp(ctx, target);
  say(ctx, 'deploy', `deployed ${target.id}`);
  await waitForPublished(ctx, { appId: target.id, accept: () => true, count: record.to.instances, warm: true, timeoutMs: opts.publishTimeoutMs });

  record.phase = 'shifting';
  for (const percent of opts.steps) {
    checkAborted(ctx);
    await setSplit(ctx, record, percent);
    await saveRecord(ctx, record);
    await pause(ctx, opts.stepWaitMs);
  }
  checkAborted(ctx);
  await setSplit(ctx, record, 100);
  record.phase = 'switched';
  await saveRecord(ctx, record);
  await pause(ctx, opts.stepWaitMs);

  checkAborted(ctx);
  record.phase = 'draining';
  await saveRecord(ctx, record);
  await retire(ctx, record.from.appId, 'rollout', opts);
  record.phase = 'done';
  await saveRecord(ctx, record);
  say(ctx, 'rollout', `${app}: ${record.to.appId} serves everything; ${record.from.appId} is kept at 0 instances for a later rollback (${((Date.now() - record.startedAt) / 1000).toFixed(1)} s)`);
  return record;
}

/**
 * Rolls back: brings the old version back to its instances, waits until they
 * are published, restores the policy from before the rollout, then drains
 * the new version and scales it to zero.
 */
export async function abortRollout(ctx: OperationContext, app: string, opts: RolloutOptions): Promise<RolloutRecord> {
  const record = await readRecord(ctx, app);
  if (!record) throw new OperationError(`no rollout of ${app} is recorded in Redis`);
  if (record.phase === 'aborted') throw new OperationError(`the rollout of ${app} was already aborted`);
  say(ctx, 'abort', `${app}: back from ${record.to.appId} to ${record.from.appId} (the rollout was ${record.phase})`);
  record.phase = 'aborting';
  await saveRecord(ctx, record);

  const old = await readApp(ctx, record.from.appId);
  if (!old) throw new OperationError(`${record.from.appId} no longer exists in Marathon; cannot roll back to it`);
  if (activeTasks(old).length < record.from.instances || old.instances !== record.from.instances) {
    await setInstances(ctx, record.from.appId, record.from.instances);
    say(ctx, 'scale', `${record.from.appId} → ${record.from.instances} instances`);
  }
  await waitForPublished(ctx, { appId: record.from.appId, accept: () => true, count: record.from.instances, warm: true, timeoutMs: opts.publishTimeoutMs });
  await setSplit(ctx, record, 0);
  if (record.previousPolicy === null) await ctx.policies.remove(app);
  else await ctx.policies.set(app, record.previousPolicy);
  say(ctx, 'traffic', record.previousPolicy === null ? `removed the rollout's policy of ${app}` : `restored the policy of ${app} from before the rollout`);
  if (await readApp(ctx, record.to.appId)) await retire(ctx, record.to.appId, 'rollout --abort', opts);
  record.phase = 'aborted';
  await saveRecord(ctx, record);
  say(ctx, 'abort', `${app}: rolled back to ${record.from.appId}`);
  return record;
}

export async function readRecord(ctx: OperationContext, app: string): Promise<RolloutRecord | null> {
  const raw = await ctx.redis.get(recordKey(ctx, app));
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as RolloutRecord;
  } catch {
    throw new OperationError(`${recordKey(ctx, app)} holds something that is not a rollout record`);
  }
}

function recordKey(ctx: OperationContext, app: string): string {
  return `${ctx.prefix}rollout:${app}`;
}

async function saveRecord(ctx: OperationContext, record: RolloutRecord): Promise<void> {
  record.updatedAt = Date.now();
  await ctx.redis.set(recordKey(ctx, record.app), JSON.stringify(record));
}

/** Drains every task of the Marathon app, then scales it to zero. */
async function retire(ctx: OperationContext, appId: string, operation: string, timeouts: DrainTimeouts): Promise<void> {
  const app = await readApp(ctx, appId);
  const tasks = app ? activeTasks(app) : [];
  if (tasks.length > 0) {
    // Killing with scale lowers instances as it goes; setting zero afterwards covers tasks still staging.
    await drainAndKill(ctx, tasks.map((t) => ({ taskId: t.id, appId })), true, operation, timeouts);
  }
  await setInstances(ctx, appId, 0);
  say(ctx, 'scale', `${appId} → 0 instances`);
}

/** The percentage of users on the new version; 0 pins everyone to the old one, 100 makes the new one the default. */
async function setSplit(ctx: OperationContext, record: RolloutRecord, percent: number): Promise<void> {
  const seed = `rollout:${record.app}:${record.startedAt}`;
  const policy =
    percent >= 100
      ? { default: record.to.version, seed, rules: [] }
      : {
          default: record.from.version,
          seed,
          rules: percent > 0 ? [{ name: 'rollout', match: { percentage: { value: percent, by: record.splitBy } }, version: record.to.version }] : [],
        };
  await ctx.policies.set(record.app, JSON.stringify(policy));
  record.percent = percent;
  (record.shares ??= []).push({ percent, at: Date.now() });
  await saveRecord(ctx, record);
  say(ctx, 'traffic', percent >= 100 ? `every request → ${record.to.version}` : percent === 0 ? `every request → ${record.from.version}` : `${percent}% of users → ${record.to.version}`);
}

/** Checks the definition is a Marathon app routed as a new version of `app`. */
function checkDefinition(app: string, definition: unknown): AppDefinition {
  if (typeof definition !== 'object' || definition === null || Array.isArray(definition)) throw new OperationError('the new app definition must be a JSON object');
  const def = definition as Record<string, unknown>;
  if (typeof def.id !== 'string' || def.id === '') throw new OperationError('the new app definition has no "id"');
  const labels = routingLabels(def.labels);
  if ((labels.app ?? def.id) !== app) throw new OperationError(`${def.id} is not a version of ${app}: set its label edgeroute.app=${app}`);
  return def as AppDefinition;
}

function routingLabels(labels: unknown): { app: string | null; version: string } {
  const text: Record<string, string> = {};
  if (typeof labels === 'object' && labels !== null) for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') text[k] = v;
  const read = readRoutingLabels(text);
  if (!read.ok) throw new OperationError(`the new app's labels: ${read.message}`);
  if (!read.routed) throw new OperationError('the new app is not routed: it needs the label edgeroute.vhosts');
  return { app: read.value.app, version: read.value.version };
}

/** The one Marathon app now serving `app` (other than the new one). */
async function currentVersion(ctx: OperationContext, app: string, newId: string): Promise<{ app: MarathonApp; version: string }> {
  const listing = parseAppsResponse(await ctx.marathon.getJson('/v2/apps?embed=apps.tasks'));
  const members: Array<{ app: MarathonApp; version: string }> = [];
  for (const candidate of listing.snapshot.apps) {
    if (candidate.id === newId) continue;
    const labels = readRoutingLabels(candidate.labels);
    if (!labels.ok || !labels.routed || (labels.value.app ?? candidate.id) !== app) continue;
    if (candidate.instances > 0 || activeTasks(candidate).length > 0) members.push({ app: candidate, version: labels.value.version });
  }
  if (members.length === 0) throw new OperationError(`no running Marathon app is a version of ${app}; deploy it with Marathon first`);
  if (members.length > 1) throw new OperationError(`${app} runs ${members.length} versions (${members.map((m) => m.app.id).join(', ')}); a rollout starts from exactly one`);
  return members[0] as { app: MarathonApp; version: string };
}
