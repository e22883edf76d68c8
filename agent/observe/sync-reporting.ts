/** Turns what each sync did into feed events and metrics. */
import type { AppRoute } from '../core/routing-table.js';
import type { AgentFeed } from './feed.js';
import type { AgentMetrics } from './metrics.js';
import type { Reconciler, SyncObserver } from '../control/reconciler.js';

/**
 * Beyond this many changed apps in one sync (a first full sync, a Marathon
 * failover), one summary is more useful than a line per backend, and a
 * hundred thousand events would cost the agent memory at the worst moment.
 */
const DETAILED_CHANGES = 200;

export function syncReporter(feed: AgentFeed, metrics: AgentMetrics, reconciler: () => Reconciler): SyncObserver {
  return {
    synced({ timing, table, upserts, removals, replaced, pushed }) {
      const kind = timing.full ? 'full' : timing.appsFetched > 0 ? 'apps' : 'clock';
      metrics.syncs.inc({ kind, result: 'ok' });
      metrics.syncSeconds.observe({ kind }, timing.totalMs / 1000);
      if (timing.pushBytes > 0) {
        metrics.pushSeconds.observe(timing.pushMs / 1000);
        metrics.pushBytes.inc(timing.pushBytes);
      }
      metrics.dataPlaneInSync.set(pushed ? 1 : 0);
      metrics.apps.set(Number(/-(\d+)$/.exec(table.version)?.[1] ?? 0));
      const count = upserts.length + removals.length;
      if (count === 0) return;
      if (count > DETAILED_CHANGES) {
        feed.publish({ type: 'routing-changed', version: table.version, changed: upserts.slice(0, DETAILED_CHANGES).map((a) => a.id), removed: removals.slice(0, DETAILED_CHANGES), total: count });
        return;
      }
      feed.publish({ type: 'routing-changed', version: table.version, changed: upserts.map((a) => a.id), removed: removals, total: count });
      for (const route of upserts) reportBackends(feed, reconciler(), replaced.get(route.id) ?? null, route);
      for (const id of removals) reportBackends(feed, reconciler(), replaced.get(id) ?? null, null);
    },
    failed(err) {
      metrics.syncs.inc({ kind: 'any', result: 'error' });
      feed.publish({ type: 'error', message: `sync failed: ${err.message}` });
    },
  };
}

/** Which backends of one app started or stopped getting traffic, and why they stopped. */
function reportBackends(feed: AgentFeed, reconciler: Reconciler, before: AppRoute | null, after: AppRoute | null): void {
  const app = (after ?? before)?.id;
  if (app === undefined) return;
  const routed = (route: AppRoute | null) => new Map(Object.entries(route?.versions ?? {}).flatMap(([version, v]) => v.backends.map((b) => [`${version}\u0000${b.id}`, version] as const)));
  const was = routed(before);
  const is = routed(after);
  let reasons: Map<string, string> | null = null;
  for (const [key, version] of is) if (!was.has(key)) feed.publish({ type: 'published', app, version, taskId: key.split('\u0000')[1] as string });
  for (const [key, version] of was) {
    if (is.has(key)) continue;
    const taskId = key.split('\u0000')[1] as string;
    reasons ??= new Map(reconciler.statusesOf(app).map((s) => [s.taskId, s.reason]));
    feed.publish({ type: 'unpublished', app, version, taskId, reason: reasons.get(taskId) ?? 'the task ended' });
  }
}
