/** What the plugin must change to go from one routing table to the next. */
import type { AppRoute, RoutingTable } from './routing-table.js';

export interface TableDiff {
  readonly upserts: readonly AppRoute[];
  readonly removals: readonly string[];
}

export function diffTables(previous: RoutingTable | null, next: RoutingTable): TableDiff {
  const before = previous?.apps ?? {};
  const upserts = Object.values(next.apps).filter((app) => before[app.id]?.hash !== app.hash);
  const removals = Object.keys(before).filter((id) => !(id in next.apps));
  return { upserts, removals };
}

export function isEmptyDiff(diff: TableDiff): boolean {
  return diff.upserts.length === 0 && diff.removals.length === 0;
}
