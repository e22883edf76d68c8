// Fuzzing (issue 8): every target of test/fuzz with 1,000 cases and a fixed
// seed (EDGEROUTE_FUZZ_CASES and EDGEROUTE_FUZZ_SEED override them; the chaos
// run uses 10,000). No crash, no worker exit, every refusal logged, the good
// app routed throughout; a failure prints the seed and case index to replay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFuzzTargets, runFuzz, startFuzzRig, type FuzzRig, type FuzzSummary, type FuzzTarget } from '../fuzz/index.js';
import { generatePolicyCase } from '../fuzz/policy-cases.js';
import { Rng } from '../fuzz/prng.js';

const CASES = Number(process.env.EDGEROUTE_FUZZ_CASES ?? 1_000);
const SEED = Number(process.env.EDGEROUTE_FUZZ_SEED ?? 20_261_122);
// Generous: 10,000 cases of a target take a few minutes on 2 cores.
const TARGET_TIMEOUT_MS = Math.max(60_000, CASES * 60);

let rig: FuzzRig;

beforeAll(async () => {
  rig = await startFuzzRig();
});

afterAll(async () => {
  await rig?.stop();
});

/** One line per target for the test output; the details only when something failed. */
function report(summary: FuzzSummary): void {
  const { target, seed, cases, rejected, accepted, crashes, worstMs, durationMs, failureCount } = summary;
  console.log(`fuzz ${target}: ${cases} cases (seed ${seed}) in ${durationMs} ms: ${accepted} accepted, ${rejected} rejected, ${crashes} crashes, ${failureCount} failures, worst case ${worstMs} ms`);
}

async function fuzz(target: FuzzTarget): Promise<FuzzSummary> {
  const summary = await runFuzz(target, { cases: CASES, seed: SEED, rig });
  report(summary);
  return summary;
}

function expectClean(summary: FuzzSummary): void {
  expect(summary.failures, `replay with runFuzz('${summary.target}', { seed: ${summary.seed}, cases, only: [index] })`).toEqual([]);
  expect(summary.crashes).toBe(0);
  expect(summary.accepted + summary.rejected).toBeGreaterThan(0);
}

describe('fuzzing', () => {
  it('lists the six targets', () => {
    expect(listFuzzTargets().map((t) => t.name)).toEqual(['marathon-events', 'marathon-listings', 'agent-e2e', 'policies', 'push', 'requests']);
  });

  it('draws each case from (seed, target, index) alone, so a printed failure replays', () => {
    const draw = (index: number) => generatePolicyCase(Rng.forCase(SEED, 'policies', index)).text;
    expect(draw(7)).toBe(draw(7));
    expect(draw(7)).not.toBe(draw(8));
  });

  it('marathon-events: parseEvent and the resync decision never throw, and every refusal has a message', async () => {
    const summary = await fuzz('marathon-events');
    expectClean(summary);
    expect(summary.rejected).toBeGreaterThan(CASES / 10);
  });

  it('marathon-listings: only "not a listing" is thrown, one bad app never hides the others, every route is one nginx takes (TCP-only ones never reach it)', async () => {
    const summary = await fuzz('marathon-listings');
    expectClean(summary);
    expect(summary.details['refused whole']).toBeGreaterThan(0);
    // Per-route labels (issue 13): bad ones skip their app with a problem naming them, good ones reach the route.
    expect(summary.details['route labels: a bad one skipped its app']).toBeGreaterThan(0);
    expect(summary.details['route labels: carried into the route as predicted']).toBeGreaterThan(0);
    // edgeroute.tcpPort (numbers, 'service', bad values): a bad one skips only its app, a good one reaches the route, TCP-only apps never reach nginx.
    expect(summary.details['tcp port: a bad one skipped its app']).toBeGreaterThan(0);
    expect(summary.details['tcp port: carried into the route as predicted']).toBeGreaterThan(0);
    expect(summary.details['tcp port: a TCP-only app left out of the nginx push']).toBeGreaterThan(0);
  }, TARGET_TIMEOUT_MS);

  it('agent-e2e: the agent stays up, logs what it refused, and nginx keeps routing the good app', async () => {
    const summary = await fuzz('agent-e2e');
    expectClean(summary);
    expect(summary.details.malformedEventsLogged).toBeGreaterThan(0);
    expect(summary.details.syncFailuresLogged).toBeGreaterThan(0);
  }, TARGET_TIMEOUT_MS);

  it('policies: every invalid policy is logged and the last good one stays; the CLI decides as the plugin does', async () => {
    const summary = await fuzz('policies');
    expectClean(summary);
    expect(summary.rejected).toBeGreaterThan(CASES / 10);
    expect(summary.accepted).toBeGreaterThan(CASES / 10);
    // Catastrophic patterns answer (PCRE's match limit stops them; see the report for lua_regex_match_limit).
    for (const bomb of summary.details.regexBombs as Array<{ ms?: number }>) expect(bomb.ms ?? 0).toBeLessThan(2_000);
  }, TARGET_TIMEOUT_MS);

  it('push: bad pushes get 400 or 409 with a message and change nothing, never a 500', async () => {
    const summary = await fuzz('push');
    expectClean(summary);
    expect(summary.details['HTTP 500']).toBeUndefined();
    // Paths and settings: valid ones taken, invalid ones refused whole with a 400 naming the field.
    expect(summary.details['paths and settings: valid push']).toBeGreaterThan(0);
    expect(summary.details['paths and settings: invalid push']).toBeGreaterThan(0);
    // Both ways a push comes: read whole (a Content-Length), and read as it arrives (chunked).
    expect(summary.details['sent chunked']).toBeGreaterThan(0);
    expect(summary.details['sent with a Content-Length']).toBeGreaterThan(0);
  }, TARGET_TIMEOUT_MS);

  it('requests: every request gets a proper status, no client X-Edgeroute-Version reaches a backend, crafted paths reach the right app normalized', async () => {
    const summary = await fuzz('requests');
    expectClean(summary);
    expect(summary.details['echoed: a spoofed X-Edgeroute-Version overwritten']).toBeGreaterThan(0);
    // Crafted paths on a host shared by path prefix: the backend got the normalized path, and nginx refused some.
    expect(summary.details['paths: the backend got the normalized path']).toBeGreaterThan(0);
    expect(summary.details['paths: nginx refuses the path (400)']).toBeGreaterThan(0);
  }, TARGET_TIMEOUT_MS);
});
