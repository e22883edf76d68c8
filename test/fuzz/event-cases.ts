/**
 * Fuzzed Marathon events: the documented samples mutated, plus shapes the
 * samples never show (plans naming thousands of apps, ids of megabytes).
 * Also frames an event the way Jetty writes it on /v2/events, and reads the
 * frame back the way the agent does, so the end-to-end target knows exactly
 * what text the agent received.
 */
import { createParser } from 'eventsource-parser';
import { eventSamples, routedApp } from './fixtures.js';
import { arrayNode, field, isObjectNode, mutateDocument, nastyString, objectNode, raw, render, setField, toTree, type JsonTree } from './json-tree.js';
import type { Rng } from './prng.js';
import { randomRouteLabels, ROUTE_LABELS, routeLabelMutant } from './route-labels.js';

export interface EventCase {
  /** The SSE `event:` field; undefined: none (Marathon ≤ 1.4). */
  readonly eventName: string | undefined;
  readonly data: string;
  readonly notes: readonly string[];
}

/** Event names as an SSE field can carry them (no line breaks). */
function eventNameFor(rng: Rng, sampleType: string): string | undefined {
  return rng.weighted<() => string | undefined>([
    [3, () => sampleType],
    [2, () => undefined],
    [1, () => 'message'],
    [1, () => rng.pick(['status_update_event', 'group_change_success', 'event_stream_attached', 'deployment_info', 'api_post_event'])],
    [1, () => nastyString(rng).replace(/[\r\n]/g, '').slice(0, 300)],
  ])();
}

/** A deployment plan naming `count` apps, some of them nonsense. */
function hugePlan(rng: Rng, count: number): JsonTree {
  const steps = Array.from({ length: count }, (_, i) =>
    objectNode([
      ['actions', arrayNode([objectNode([['action', 'ScaleApplication'], ['app', rng.chance(0.9) ? `/fuzz/plan-${i}` : nastyString(rng)]])])],
    ]),
  );
  return objectNode([
    ['id', 'plan-fuzz'],
    ['steps', arrayNode(steps)],
  ]);
}

/** Shapes the samples never show, built on a sample. */
function special(rng: Rng, sample: JsonTree): { tree: JsonTree; note: string } {
  const tree = isObjectNode(sample) ? sample : objectNode([]);
  return rng.weighted<() => { tree: JsonTree; note: string }>([
    [
      2,
      () => {
        const count = rng.pick([50, 1_000, 10_000]);
        setField(tree, 'eventType', rng.pick(['deployment_info', 'deployment_success', 'deployment_step_success']));
        setField(tree, 'plan', hugePlan(rng, count));
        tree.entries = tree.entries.filter(([key]) => key !== 'appId');
        return { tree, note: `plan naming ${count} apps` };
      },
    ],
    [
      2,
      () => {
        const length = rng.pick([1_025, 8_192, 100_000]);
        setField(tree, 'appId', `/${'a'.repeat(length)}`);
        return { tree, note: `appId of ${length + 1} characters` };
      },
    ],
    [
      1,
      () => {
        // An app definition with per-route labels (issue 13), valid or one near-valid.
        const name = rng.pick(ROUTE_LABELS);
        const labels = rng.chance(0.5) ? randomRouteLabels(rng) : { ...randomRouteLabels(rng), [name]: routeLabelMutant(rng, name) };
        setField(tree, 'eventType', rng.pick(['api_post_event', 'deployment_info']));
        setField(tree, 'appDefinition', toTree(routedApp(rng.int(200), rng.pick(['host', 'bridge', 'container'] as const), undefined, labels)));
        return { tree, note: `appDefinition with ${JSON.stringify(labels).slice(0, 200)}` };
      },
    ],
    [1, () => ({ tree: objectNode([['eventType', nastyString(rng)]]), note: 'nasty event type' })],
    [1, () => ({ tree: objectNode([['eventType', 'status_update_event'], ['appId', rng.pick(['', '/', '//', '/..', '/a/../../v2/leader', '/x?embed=y#z'])]]), note: 'odd app id' })],
    [1, () => ({ tree: arrayNode([sample, sample]), note: 'an array of events' })],
    [1, () => ({ tree: raw(render(sample) + render(sample)), note: 'two events in one data field' })],
    [
      1,
      () => {
        const type = field(tree, 'eventType');
        setField(tree, 'eventType', typeof type === 'string' ? `${type}\u0000` : 'x');
        return { tree, note: 'NUL in the event type' };
      },
    ],
  ])();
}

export function generateEventCase(rng: Rng): EventCase {
  const sample = rng.pick(eventSamples());
  const tree = toTree(JSON.parse(sample.text));
  const eventName = eventNameFor(rng, sample.type);
  return rng.weighted<() => EventCase>([
    [1, () => ({ eventName, data: sample.text, notes: [`sample ${sample.file}`] })],
    [
      7,
      () => {
        const mutated = mutateDocument(rng, tree, { textMutationChance: 0.3, maxBytes: 256 * 1024 });
        return { eventName, data: mutated.text, notes: [`sample ${sample.file}`, ...mutated.notes] };
      },
    ],
    [
      2,
      () => {
        const built = special(rng, tree);
        return { eventName, data: render(built.tree), notes: [`sample ${sample.file}`, built.note] };
      },
    ],
  ])();
}

/** One event as Jetty frames it: each line of the data its own `data:` line, CRLF endings, a blank line after. */
export function frameSseEvent(eventName: string | undefined, data: string): string {
  const lines = data.split(/\r\n|\r|\n/);
  const head = eventName !== undefined && eventName !== '' ? `event: ${eventName}\r\n` : '';
  return `${head}${lines.map((line) => `data: ${line}\r\n`).join('')}\r\n`;
}

/** What the agent's SSE reader hands to parseEvent for this frame: the same library, the same UTF-8 round trip. */
export function readSseFrame(frame: string): Array<{ eventName: string | undefined; data: string }> {
  const received: Array<{ eventName: string | undefined; data: string }> = [];
  const parser = createParser({ onEvent: (message) => received.push({ eventName: message.event, data: message.data }) });
  parser.feed(new TextDecoder().decode(new TextEncoder().encode(frame)));
  return received;
}
