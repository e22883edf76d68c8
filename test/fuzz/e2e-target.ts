/**
 * Fuzzed Marathon input through a real agent and nginx: events written raw
 * on the simulator's /v2/events stream, and /v2/apps answers replaced by
 * fuzzed listings (each forced through a full sync). The agent must stay
 * up, keep its event stream, log what it refused, and nginx must go on
 * routing the known good app, which every fuzzed listing carries untouched.
 */
import { parseAppsListing, NOT_A_LISTING } from '../../agent/core/marathon-apps.js';
import { parseEvent } from '../../agent/core/marathon-events.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitForBackends } from '../helpers/traffic.js';
import { frameSseEvent, generateEventCase, readSseFrame } from './event-cases.js';
import { generateListingCase, type ListingItem } from './listing-cases.js';
import { Rng } from './prng.js';
import { agentHealthProblem, goodAppProblem, NginxWatch, type RigTargetRun } from './rig.js';
import { CaseBook, caseIndices, type FuzzSummary } from './summary.js';

export interface AgentFuzzOptions extends RigTargetRun {
  /** Share of cases that are listings (the rest are events); listings cost a sync each. */
  readonly listingShare?: number;
}

const SYNC_TIMEOUT_MS = 15_000;
const CHECK_EVERY = 100;
const MALFORMED_EVENT = 'ignored malformed marathon event';

type LogLine = Record<string, unknown>;
const isSyncEnd = (line: LogLine) => line.msg === 'synced' || line.msg === 'sync failed; nginx keeps its current table';

export async function fuzzAgentE2e(opts: AgentFuzzOptions): Promise<FuzzSummary> {
  const book = new CaseBook('agent-e2e', opts.seed, opts.log);
  const { rig } = opts;
  const { marathon, node } = rig;
  const watch = new NginxWatch(node.nginx);
  const logs = () => node.logs.lines();
  const logStart = logs().length;
  const countLines = (predicate: (line: LogLine) => boolean, from = logStart) => logs().slice(from).filter(predicate).length;
  // Sync ends seen so far, read incrementally: the log grows by thousands of lines.
  const syncEnds: LogLine[] = [];
  let scanned = 0;
  const readSyncEnds = () => {
    const lines = logs();
    for (; scanned < lines.length; scanned++) if (isSyncEnd(lines[scanned]!)) syncEnds.push(lines[scanned]!);
    return syncEnds;
  };
  const crashes: string[] = [];
  const onCrash = (err: unknown) => crashes.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  // The simulator's own apps, as it lists them: every fuzzed listing carries them untouched.
  const listing = (await httpGet(`${marathon.url}/v2/apps?embed=apps.tasks`)).body;
  const keep: ListingItem[] = (JSON.parse(listing) as { apps: Array<{ id: string }> }).apps.map((app) => ({ id: app.id, text: JSON.stringify(app) }));
  let expectedMalformedEvents = 0;

  const healthCheck = async (index: number) => {
    const problems = [
      await agentHealthProblem(node),
      await goodAppProblem(node.nginx.publicUrl, rig.good.host, rig.good.taskIds),
      node.agent.events.connected ? null : 'the agent lost its Marathon event stream',
      ...watch.check(),
      ...crashes.splice(0).map((stack) => `uncaught in the agent's process: ${stack}`),
    ];
    for (const problem of problems) if (problem) book.fail(index, problem, '', [], /uncaught|workers changed|error\.log/.test(problem));
  };

  try {
    for (const index of caseIndices(opts.cases, opts.only)) {
      const rng = Rng.forCase(opts.seed, 'agent-e2e', index);
      if (rng.chance(opts.listingShare ?? 0.25)) {
        const fuzzed = generateListingCase(rng, keep);
        const fail = (reason: string) => book.fail(index, reason, fuzzed.text, fuzzed.notes);
        let predicted: { refused: true } | { refused: false; problems: string[] };
        try {
          predicted = { refused: false, problems: parseAppsListing(fuzzed.text).problems.map((p) => p.message) };
        } catch {
          predicted = { refused: true };
        }
        // The sync that reads this body is the first to end after the body was served (syncs run one at a time).
        let endsBefore = -1;
        marathon.setRawAppsResponse(fuzzed.text, () => {
          if (endsBefore < 0) endsBefore = readSyncEnds().length;
        });
        marathon.publishEvent({ eventType: 'group_change_success', timestamp: new Date().toISOString(), groupId: '/', version: new Date().toISOString() });
        const end = await book.timedAsync(index, async () => {
          const deadline = Date.now() + SYNC_TIMEOUT_MS;
          for (;;) {
            if (endsBefore >= 0) {
              const ends = readSyncEnds();
              if (ends.length > endsBefore) return ends[endsBefore]!;
            }
            if (Date.now() > deadline) return null;
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
        });
        marathon.setRawAppsResponse(null);
        if (end === null) {
          fail(`no sync read the fuzzed listing within ${SYNC_TIMEOUT_MS} ms`);
          continue;
        }
        if (predicted.refused) {
          book.rejected++;
          book.count('listings refused whole');
          if (end.msg !== 'sync failed; nginx keeps its current table' || !String(end.err).startsWith(NOT_A_LISTING)) {
            fail(`a listing that is not one was not refused as such: ${JSON.stringify(end).slice(0, 300)}`);
          }
        } else {
          if (end.msg !== 'synced') fail(`the sync of a parseable listing failed: ${String(end.err).slice(0, 300)}`);
          const active = node.agent.reconciler.problems.map((p) => p.message);
          const unlogged = predicted.problems.filter((message) => !active.includes(message));
          if (unlogged.length > 0) fail(`problems not reported by the agent: ${unlogged.slice(0, 3).join('; ')}`);
          if (predicted.problems.length > 0) {
            book.rejected++;
            book.count('listings with apps or tasks skipped');
          } else book.accepted++;
        }
      } else {
        const fuzzed = generateEventCase(rng);
        const frame = frameSseEvent(fuzzed.eventName, fuzzed.data);
        const received = readSseFrame(frame);
        const refused = received.filter(({ eventName, data }) => !parseEvent(eventName, data).ok).length;
        expectedMalformedEvents += refused;
        if (refused > 0) book.rejected++;
        else book.accepted++;
        marathon.publishRawFrame(frame);
      }
      if (index % CHECK_EVERY === CHECK_EVERY - 1) await healthCheck(index);
    }

    // Back to Marathon's real listing: the table must hold exactly the good app's tasks again.
    marathon.publishEvent({ eventType: 'group_change_success', timestamp: new Date().toISOString(), groupId: '/', version: new Date().toISOString() });
    try {
      await waitForBackends(node.nginx.publicUrl, rig.good.host, rig.good.taskIds, SYNC_TIMEOUT_MS);
    } catch (err) {
      book.fail(-1, `after the run: ${(err as Error).message}`);
    }
    // Every refused event was logged, once: none was lost with a dropped stream.
    const deadline = Date.now() + 5_000;
    while (countLines((line) => line.msg === MALFORMED_EVENT) < expectedMalformedEvents && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const logged = countLines((line) => line.msg === MALFORMED_EVENT);
    book.details.malformedEventsLogged = logged;
    if (logged !== expectedMalformedEvents) book.fail(-1, `the agent logged ${logged} malformed events, ${expectedMalformedEvents} were sent`);
    const drops = logs()
      .slice(logStart)
      .filter((line) => typeof line.msg === 'string' && line.msg.startsWith('marathon event stream') && line.msg !== 'marathon event stream attached');
    if (drops.length > 0) book.fail(-1, `the event stream dropped ${drops.length} time(s) during the run: ${JSON.stringify(drops[0]).slice(0, 500)}`);
    book.details.syncFailuresLogged = countLines((line) => line.msg === 'sync failed; nginx keeps its current table');
    await healthCheck(-1);
  } finally {
    marathon.setRawAppsResponse(null);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
  return book.summary(opts.only?.length ?? opts.cases);
}
