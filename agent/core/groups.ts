/**
 * Routing groups. An app belongs to the groups its label lists
 * (edgeroute.group or HAPROXY_GROUP, comma-separated); an agent routes the
 * groups its --group lists, or every app with "*", as marathon-lb's --group
 * does. An agent without --group keeps edgeroute's own meaning: it routes the
 * apps that belong to no group.
 */

/** `--group '*'`: every app, with a group or without. */
export const EVERY_GROUP = '*';

/** The names of a comma list, trimmed, without empty entries or duplicates, sorted. */
export function parseGroupList(raw: string): string[] {
  return [...new Set(raw.split(',').map((g) => g.trim()).filter((g) => g !== ''))].sort();
}

/** Group names, as edgeroute.group and HAPROXY_GROUP may spell them. */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,127}$/;

/** Why an agent's --group is not a comma list of group names or "*"; null when it is. */
export function groupSelectorProblem(selector: string): string | null {
  const names = parseGroupList(selector);
  const bad = names.length === 0 ? selector : names.find((g) => g !== EVERY_GROUP && !GROUP_NAME.test(g));
  return bad === undefined ? null : `${JSON.stringify(selector)} has ${JSON.stringify(bad)}, which is not a group name or "${EVERY_GROUP}"`;
}

const selectors = new Map<string, ReadonlySet<string>>();

/** Whether an agent with this --group (null: none) routes an app in these groups. */
export function groupSelected(selector: string | null, appGroups: readonly string[]): boolean {
  if (selector === null) return appGroups.length === 0;
  let wanted = selectors.get(selector);
  if (wanted === undefined) {
    wanted = new Set(parseGroupList(selector));
    // One agent has one selector; the cache only spares a split per app and sync.
    if (selectors.size > 16) selectors.clear();
    selectors.set(selector, wanted);
  }
  if (wanted.has(EVERY_GROUP)) return true;
  return appGroups.some((g) => wanted.has(g));
}
