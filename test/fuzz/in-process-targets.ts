/**
 * The targets that need no processes: the agent's parsers and the routing
 * computation, fed fuzzed Marathon input directly.
 */
import { isDeepStrictEqual } from 'node:util';
import { ListingParser, NOT_A_LISTING, parseAppResponse, parseAppsListing, parseTasksResponse, type ParsedSnapshot } from '../../agent/core/marathon-apps.js';
import { affectsRouting, appsToResync, MAX_APPS_PER_EVENT, parseEvent } from '../../agent/core/marathon-events.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, type AppRoute, type RoutingResult } from '../../agent/core/routing-table.js';
import { frameSseEvent, generateEventCase, readSseFrame } from './event-cases.js';
import { generateListingCase, generateTasksCase, type ListingCase } from './listing-cases.js';
import { pluginRouteProblem } from './plugin-oracle.js';
import { Rng } from './prng.js';
import { predictRouteLabels, ROUTE_LABELS, withoutRouteLabels } from './route-labels.js';
import { CaseBook, caseIndices, prototypePolluted, type FuzzSummary, type TargetRun } from './summary.js';
import { tcpPortProblems } from './tcp-port-oracle.js';

export type InProcessOptions = TargetRun;

/**
 * Lets timers and sockets run between cases: the runner may share its process
 * with an agent (the test's routing node), whose event-stream watchdog would
 * take a minute of blocked loop for a dead Marathon.
 */
function yielder(): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < 20) return;
    await new Promise((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}

/** Marathon events through parseEvent, the SSE reader, affectsRouting and appsToResync. */
export async function fuzzMarathonEvents(opts: InProcessOptions): Promise<FuzzSummary> {
  const book = new CaseBook('marathon-events', opts.seed, opts.log);
  const pause = yielder();
  for (const index of caseIndices(opts.cases, opts.only)) {
    await pause();
    const rng = Rng.forCase(opts.seed, 'marathon-events', index);
    const fuzzed = generateEventCase(rng);
    const fail = (reason: string, crash = false) => book.fail(index, reason, fuzzed.data, fuzzed.notes, crash);
    try {
      book.timed(index, () => {
        // What the agent's stream reader delivers for this frame (line breaks become \n).
        const delivered = readSseFrame(frameSseEvent(fuzzed.eventName, fuzzed.data));
        if (delivered.length !== 1) return fail(`the SSE frame delivered ${delivered.length} events instead of 1`);
        const { eventName, data } = delivered[0]!;
        for (const [name, text] of [[fuzzed.eventName, fuzzed.data], [eventName, data]] as const) {
          const parsed = parseEvent(name, text);
          if (!parsed.ok) {
            if (typeof parsed.message !== 'string' || parsed.message === '') fail('refused without a message');
            continue;
          }
          const { event } = parsed;
          if (typeof event.type !== 'string') fail('event type is not a string');
          if (!event.appIds.every((id) => typeof id === 'string' && id !== '')) fail('an app id is not a non-empty string');
          if (event.appId !== (event.appIds[0] ?? null)) fail('appId is not the first of appIds');
          const routing = affectsRouting(event);
          const apps = appsToResync(event);
          if (typeof routing !== 'boolean') fail('affectsRouting is not a boolean');
          if (apps !== null && (apps.length === 0 || apps.length > MAX_APPS_PER_EVENT)) fail(`appsToResync named ${apps.length} apps`);
          if (apps !== null && !routing) fail('appsToResync named apps of an event that does not affect routing');
        }
        const outcome = parseEvent(eventName, data);
        if (outcome.ok) book.accepted++;
        else {
          book.rejected++;
          book.count(`rejected: ${outcome.message.split(/[:\n]/)[0]}`);
        }
      });
    } catch (err) {
      fail(`threw ${(err as Error).stack ?? String(err)}`, true);
    }
    const polluted = prototypePolluted();
    if (polluted) fail(polluted, true);
  }
  return book.summary(opts.only?.length ?? opts.cases);
}

/** Feeds `text` in random pieces, as the network delivers it. */
function parseInChunks(rng: Rng, text: string): ParsedSnapshot {
  const parser = new ListingParser();
  let at = 0;
  while (at < text.length) {
    const size = rng.chance(0.3) ? rng.between(1, 16) : rng.between(1, 65_536);
    parser.push(text.slice(at, at + size));
    at += size;
  }
  return parser.finish();
}

type ListingOutcome = { ok: true; parsed: ParsedSnapshot } | { ok: false; error: Error };

function attempt(work: () => ParsedSnapshot): ListingOutcome {
  try {
    return { ok: true, parsed: work() };
  } catch (err) {
    return { ok: false, error: err as Error };
  }
}

const ids = (parsed: ParsedSnapshot) => parsed.snapshot.apps.map((app) => app.id);

/**
 * Listings through ListingParser (in random chunks and whole), app and task
 * answers through their parsers, and every parsed snapshot through the routing
 * computation, whose routes must be ones the plugin accepts.
 */
export async function fuzzMarathonListings(opts: InProcessOptions): Promise<FuzzSummary> {
  const book = new CaseBook('marathon-listings', opts.seed, opts.log);
  const pause = yielder();
  for (const index of caseIndices(opts.cases, opts.only)) {
    await pause();
    const rng = Rng.forCase(opts.seed, 'marathon-listings', index);
    const listing = generateListingCase(rng);
    const fail = (reason: string, crash = false) => book.fail(index, reason, listing.text, listing.notes, crash);
    try {
      book.timed(index, () => {
        const streamed = attempt(() => parseInChunks(rng, listing.text));
        const whole = attempt(() => parseAppsListing(listing.text));
        for (const outcome of [streamed, whole]) {
          if (!outcome.ok && !outcome.error.message.startsWith(NOT_A_LISTING)) fail(`threw something else than "not a listing": ${outcome.error.stack}`, true);
        }
        if (streamed.ok !== whole.ok || (streamed.ok && whole.ok && !isDeepStrictEqual(streamed.parsed, whole.parsed))) {
          fail('parsing in chunks and parsing whole disagree');
        }
        if (!streamed.ok) {
          book.rejected++;
          book.count('refused whole');
          // Refusing the whole listing is right only when the bad app broke the JSON around it.
          if (listing.mutatedItem !== null && isJson(listing.mutatedItem)) fail('one malformed app made the whole listing be refused');
          return;
        }
        const parsed = streamed.parsed;
        const missing = listing.untouchedIds.filter((id) => !ids(parsed).includes(id));
        if (missing.length > 0) fail(`good apps hidden by the bad one: ${missing.join(', ')}`);
        if (!parsed.problems.every((p) => typeof p.message === 'string' && p.message !== '')) fail('a problem without a message');
        if (parsed.problems.length > 0) {
          book.rejected++;
          book.count('apps or tasks skipped with a problem');
        } else book.accepted++;
        const routed = attempt(() => {
          const result = computeRoutingTable({ snapshot: parsed.snapshot, config: DEFAULT_ROUTING_CONFIG, hostAddresses: new Map(), healthMemory: new Map(), now: Date.now() });
          for (const route of Object.values(result.table.apps)) {
            // A TCP-only route (edgeroute.tcpPort, no vhosts) is HAProxy's: nginx is never sent it (tcp-port-oracle.ts checks).
            if (route.vhosts.length === 0) continue;
            const problem = pluginRouteProblem(route);
            if (problem) fail(`the agent would push a route nginx refuses (so no push at all would pass): ${problem}`);
          }
          for (const problem of routeLabelProblems(listing, parsed, result, (name) => book.count(name))) fail(problem);
          for (const problem of tcpPortProblems(listing, parsed, result, (name) => book.count(name))) fail(problem);
          return parsed;
        });
        if (!routed.ok) fail(`computing the routing table threw: ${routed.error.stack}`, true);
        if (listing.mutatedItem !== null && isJson(listing.mutatedItem)) {
          const single = attempt(() => parseAppResponse(JSON.parse(`{"app":${listing.mutatedItem}}`)));
          if (!single.ok) fail(`parseAppResponse threw: ${single.error.stack}`, true);
        }
      });
      const tasks = generateTasksCase(rng);
      if (tasks) {
        const parsed = parseTasksResponse(tasks.body);
        const parsedIds = parsed.tasks.map((task) => task.id);
        const missing = tasks.untouchedIds.filter((id) => !parsedIds.includes(id));
        if (missing.length > 0) book.fail(index, `good tasks hidden by a bad one: ${missing.join(', ')}`, JSON.stringify(tasks.body), tasks.notes);
      }
    } catch (err) {
      fail(`threw ${(err as Error).stack ?? String(err)}`, true);
    }
    const polluted = prototypePolluted();
    if (polluted) fail(polluted, true);
  }
  return book.summary(opts.only?.length ?? opts.cases);
}

/**
 * The per-route labels (issue 13) of every parsed app with edgeroute.vhosts,
 * against what route-labels.ts predicts: a bad one skips its app (no route)
 * with a problem for that app, naming one of the bad labels whenever the
 * app's other labels are the valid ones it was generated with; good ones
 * never cause a problem, and the app's route carries exactly the predicted
 * paths (on each of its hosts) and settings.
 */
function routeLabelProblems(listing: ListingCase, parsed: ParsedSnapshot, result: RoutingResult, count: (name: string) => void): string[] {
  const out: string[] = [];
  const originals = new Map<string, Record<string, unknown>>();
  for (const item of listing.generated) {
    const labels = (JSON.parse(item.text) as { labels?: Record<string, unknown> }).labels;
    originals.set(item.id, typeof labels === 'object' && labels !== null ? labels : {});
  }
  const routeOf = new Map<string, AppRoute>();
  for (const route of Object.values(result.table.apps)) for (const version of Object.values(route.versions)) routeOf.set(version.marathonAppId, route);
  const namesRouteLabel = (message: string, labels: readonly string[]) => labels.some((label) => new RegExp(`${label.replace('.', '\\.')}(?![A-Za-z])`).test(message));
  for (const app of parsed.snapshot.apps) {
    if (app.labels['edgeroute.vhosts'] === undefined) continue;
    const prediction = predictRouteLabels(app.labels);
    const original = originals.get(app.id);
    const othersAsGenerated = original !== undefined && isDeepStrictEqual(withoutRouteLabels(app.labels), withoutRouteLabels(original));
    const problems = result.problems.filter((p) => p.appId === app.id).map((p) => p.message);
    const shown = (labels: readonly string[]) => labels.map((label) => `${label}=${JSON.stringify(app.labels[label]).slice(0, 80)}`).join(', ');
    if (!prediction.ok) {
      count('route labels: a bad one skipped its app');
      if (routeOf.has(app.id)) out.push(`app ${app.id} was routed with a bad ${shown(prediction.bad)}`);
      if (problems.length === 0) out.push(`app ${app.id} has a bad ${shown(prediction.bad)} and no problem says so`);
      else if (othersAsGenerated && !problems.some((message) => namesRouteLabel(message, prediction.bad))) {
        out.push(`app ${app.id} has a bad ${shown(prediction.bad)}, but its problems name none of them: ${problems.join('; ').slice(0, 300)}`);
      }
      continue;
    }
    const present = ROUTE_LABELS.filter((label) => app.labels[label] !== undefined);
    if (othersAsGenerated && problems.some((message) => namesRouteLabel(message, ROUTE_LABELS))) {
      out.push(`app ${app.id} was refused for valid route labels (${shown(present)}): ${problems.join('; ').slice(0, 300)}`);
    }
    const route = routeOf.get(app.id);
    if (route === undefined || !othersAsGenerated || problems.length > 0) continue;
    const { paths, settings } = prediction.value;
    const onlyRoot = paths.length === 1 && paths[0] === '/';
    if (onlyRoot ? route.paths !== undefined : !route.vhosts.every((host) => isDeepStrictEqual([...(route.paths?.[host] ?? [])].sort(), paths))) {
      out.push(`app ${app.id} (${shown(present)}) was pushed with paths ${JSON.stringify(route.paths)}, not ${JSON.stringify(paths)} on each of ${JSON.stringify(route.vhosts)}`);
    }
    if (!isDeepStrictEqual(route.settings ?? null, settings)) {
      out.push(`app ${app.id} (${shown(present)}) was pushed with settings ${JSON.stringify(route.settings)}, not ${JSON.stringify(settings)}`);
    }
    if (present.length > 0) count('route labels: carried into the route as predicted');
  }
  return out;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
