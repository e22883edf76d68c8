/** What the plugin must change to go from one routing table to the next. */
import type { AppRoute, RoutingTable } from './routing-table.js';

export interface TableDiff {
  readonly upserts: readonly AppRoute[];
  readonly removals: readonly string[];
}

export function diffTables(previous: RoutingTable | null, next: RoutingTable): TableDiff {
  const before = previous?.apps ?? {};
  const upserts: AppRoute[] = [];
  for (const id in next.apps) {
    const app = next.apps[id] as AppRoute;
    const old = before[id];
    // Unchanged routes are the same objects from one computation to the next.
    if (old !== app && old?.hash !== app.hash) upserts.push(app);
  }
  const removals: string[] = [];
  for (const id in before) if (!(id in next.apps)) removals.push(id);
  return { upserts, removals };
}

export function isEmptyDiff(diff: TableDiff): boolean {
  return diff.upserts.length === 0 && diff.removals.length === 0;
}
