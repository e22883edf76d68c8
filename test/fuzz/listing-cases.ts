/**
 * Fuzzed `GET /v2/apps?embed=apps.tasks` listings: several apps (documented
 * samples and routed variants of them), exactly one of them mutated, so a
 * case can check that one bad app never hides the others. A few cases break
 * the whole document instead (truncated, random bytes, another document).
 */
import { appSamples, routedApp, taskSamples } from './fixtures.js';
import { field, isObjectNode, mutateDocument, mutateNamedField, mutateText, render, setField, TEXT_MUTATIONS, toTree, type JsonTree } from './json-tree.js';
import type { Rng } from './prng.js';
import { randomRouteLabels, ROUTE_LABELS, routeLabelMutant, type RouteLabel } from './route-labels.js';
import { TCP_PORT_LABEL, tcpPortMutant, withTcpPort } from './tcp-port-labels.js';

/** Fields routing reads, in groups, so that a rare field (a container port) is hit as often as a common one. */
const ROUTING_FIELDS: readonly RegExp[] = [
  /^(containerPort|hostPort|port|number)$/,
  /^ports$/,
  /^(host|ipAddress|ipAddresses)$/,
  /^(id|appId)$/,
  /^state$/,
  /^(startedAt|stagedAt|firstSuccess|alive|healthCheckResults)$/,
  /^edgeroute\./,
  /^(mode|networks|network|portMappings|portDefinitions)$/,
];

export interface ListingItem {
  readonly id: string;
  readonly text: string;
}

export interface ListingCase {
  readonly text: string;
  /** Apps left as they were: every one must be parsed whenever the listing is. */
  readonly untouchedIds: readonly string[];
  /** The mutated app's text, or null when the whole document was mutated instead. */
  readonly mutatedItem: string | null;
  /** The generated apps as they were before the mutation. */
  readonly generated: readonly ListingItem[];
  readonly notes: readonly string[];
}

/** A few apps of every kind: samples as documented (not routed) and routed ones in each network mode. */
export function listingApps(rng: Rng, first: number): ListingItem[] {
  const samples = appSamples();
  const items: ListingItem[] = [];
  const sampleCount = rng.between(1, samples.length);
  for (let i = 0; i < sampleCount; i++) {
    const app = samples[i]!;
    items.push({ id: String(app.id), text: JSON.stringify(app) });
  }
  const routedCount = rng.between(1, 4);
  for (let i = 0; i < routedCount; i++) {
    // Half of them with per-route labels (paths, settings), all valid: the mutators make them bad.
    const app = routedApp(first + i, rng.pick(['host', 'bridge', 'container'] as const), rng.pick(samples), rng.chance(0.5) ? randomRouteLabels(rng) : {});
    // A third of them with a TCP port (some TCP-only): the mutators make it bad.
    if (rng.chance(0.35)) withTcpPort(rng, app, first + i);
    items.push({ id: String(app.id), text: JSON.stringify(app) });
  }
  return items;
}

/**
 * `keep` are apps that must survive every case (the end-to-end target passes
 * the simulator's real apps, which nginx must go on routing).
 */
export function generateListingCase(rng: Rng, keep: readonly ListingItem[] = []): ListingCase {
  const generated = listingApps(rng, rng.int(200));
  const wholeDocument = rng.chance(0.1);
  // Routed apps (last in the list) half of the time: their mutations reach the routing code.
  const routedFrom = generated.findIndex((item) => item.id.startsWith('/fuzz/routed-'));
  const mutateAt = rng.chance(0.5) ? rng.between(routedFrom, generated.length - 1) : rng.int(generated.length);
  const notes: string[] = [];
  let mutatedItem: string | null = null;
  const items = generated.map((item, i) => {
    if (wholeDocument || i !== mutateAt) return item.text;
    const tree = toTree(JSON.parse(item.text));
    // A third of the time, the fields routing reads: ports, addresses, ids, states, labels, health;
    // now and then a per-route label set to a string near a valid one (the generic mutators
    // mostly write numbers and other types, which leave a label out rather than make it bad).
    const targeted = rng.chance(0.15) ? setRouteLabel(rng, tree) : rng.chance(0.4) ? mutateNamedField(rng, tree, rng.pick(ROUTING_FIELDS)) : null;
    const mutated = targeted ? { text: render(targeted.tree), notes: [targeted.note] } : mutateDocument(rng, tree, { textMutationChance: 0.2, maxBytes: 512 * 1024 });
    notes.push(`app ${item.id}`, ...mutated.notes);
    mutatedItem = mutated.text;
    return mutated.text;
  });
  // The apps to keep go anywhere in the listing, before and after the bad one.
  const all = [...items];
  for (const item of keep) all.splice(rng.int(all.length + 1), 0, item.text);
  const separator = rng.pick([',', ', ', ',\n  ', ' ,\r\n']);
  let text = `{${rng.chance(0.2) ? '"version":"1.10",' : ''}"apps":[${all.join(separator)}]${rng.chance(0.2) ? ',"total":1' : ''}}`;
  if (wholeDocument) {
    const mutated = mutateText(rng, text, rng.pick(TEXT_MUTATIONS));
    text = mutated.text;
    notes.push(`whole listing: ${mutated.note}`);
  }
  const untouchedIds = [...keep.map((item) => item.id), ...generated.filter((_, i) => wholeDocument || i !== mutateAt).map((item) => item.id)];
  return { text, untouchedIds: wholeDocument ? [] : untouchedIds, mutatedItem, generated, notes };
}

/** Sets one per-route label of an app's labels (added when absent) to a near-valid string; null without labels. */
function setRouteLabel(rng: Rng, tree: JsonTree): { tree: JsonTree; note: string } | null {
  const labels = isObjectNode(tree) ? field(tree, 'labels') : undefined;
  if (labels === undefined || !isObjectNode(labels)) return null;
  const name = rng.pick<RouteLabel | typeof TCP_PORT_LABEL>([...ROUTE_LABELS, TCP_PORT_LABEL, TCP_PORT_LABEL]);
  const value = name === TCP_PORT_LABEL ? tcpPortMutant(rng) : routeLabelMutant(rng, name);
  setField(labels, name, value);
  return { tree, note: `label ${name} set to ${JSON.stringify(value).slice(0, 60)}` };
}

export interface TasksCase {
  readonly body: unknown;
  readonly untouchedIds: readonly string[];
  readonly notes: readonly string[];
}

/** A `/v2/tasks` answer with one task mutated; null when the mutation left no parseable JSON. */
export function generateTasksCase(rng: Rng): TasksCase | null {
  const tasks = taskSamples();
  const at = rng.int(tasks.length);
  const mutated = mutateDocument(rng, toTree(tasks[at]), { textMutationChance: 0.1, maxBytes: 64 * 1024 });
  let body: unknown;
  try {
    body = JSON.parse(`{"tasks":[${tasks.map((task, i) => (i === at ? mutated.text : JSON.stringify(task))).join(',')}]}`);
  } catch {
    return null;
  }
  const untouchedIds = tasks.filter((_, i) => i !== at).map((task) => String(task.id));
  return { body, untouchedIds, notes: [`task ${at}`, ...mutated.notes] };
}
