/**
 * Fuzzing edgeroute (issue 8): random and malformed Marathon events and app
 * listings, split policies, pushes to the plugin and client requests at
 * nginx's limits. Every case is drawn from (seed, target, case index), so a
 * failure prints what replays it.
 *
 *   import { listFuzzTargets, runFuzz, startFuzzRig } from './test/fuzz/index.js';
 *   const rig = await startFuzzRig();             // only the nginx targets need it
 *   const summary = await runFuzz('policies', { cases: 10_000, seed: 42, rig });
 *   await rig.stop();
 *
 * Without `rig`, runFuzz starts one for a target that needs it and stops it
 * after. The summary: { target, seed, cases, rejected, accepted, crashes,
 * worstMs, durationMs, failures, failureCount, details }.
 */
import { fuzzAgentE2e } from './e2e-target.js';
import { fuzzMarathonEvents, fuzzMarathonListings } from './in-process-targets.js';
import { fuzzPolicies } from './policy-target.js';
import { fuzzPush } from './push-target.js';
import { randomSeed } from './prng.js';
import { fuzzRequests } from './requests-target.js';
import { startFuzzRig, type FuzzRig } from './rig.js';
import type { FuzzSummary } from './summary.js';

export type { FuzzFailure, FuzzSummary } from './summary.js';
export { startFuzzRig, type FuzzRig } from './rig.js';
export { randomSeed } from './prng.js';

export type FuzzTarget = 'marathon-events' | 'marathon-listings' | 'agent-e2e' | 'policies' | 'push' | 'requests';

export interface FuzzTargetInfo {
  readonly name: FuzzTarget;
  readonly description: string;
  /** Needs nginx, Redis and the simulator (a FuzzRig). */
  readonly needsRig: boolean;
}

const TARGETS: readonly FuzzTargetInfo[] = [
  { name: 'marathon-events', needsRig: false, description: 'Marathon events through parseEvent, the SSE reader and the resync decision (in process)' },
  { name: 'marathon-listings', needsRig: false, description: 'app and task listings through the parsers and the routing computation (in process)' },
  { name: 'agent-e2e', needsRig: true, description: 'fuzzed events and /v2/apps answers through a real agent and nginx' },
  { name: 'policies', needsRig: true, description: 'split policies through Redis into the plugin, compared with the CLI check' },
  { name: 'push', needsRig: true, description: "NDJSON pushes to the plugin's admin endpoint (paths and settings among them)" },
  { name: 'requests', needsRig: true, description: "client requests at nginx's header and URI limits, and crafted paths on a host apps share by path prefix" },
];

/** The targets, in the order a full run goes through them. */
export function listFuzzTargets(): readonly FuzzTargetInfo[] {
  return TARGETS;
}

export interface FuzzOptions {
  /** Cases to run: 1,000 in `npm test`, 10,000 in the chaos run. */
  readonly cases: number;
  /** Default: a random seed (it is in the summary, to replay the run). */
  readonly seed?: number;
  /** Processes for the nginx targets; default: started and stopped by this call. */
  readonly rig?: FuzzRig;
  /** Run only these case indices (a replay of printed failures). */
  readonly only?: readonly number[];
  /** Where failure lines go; default stderr. */
  readonly log?: (line: string) => void;
}

export async function runFuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzSummary> {
  const info = TARGETS.find((t) => t.name === target);
  if (!info) throw new Error(`unknown fuzz target ${JSON.stringify(target)}; the targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  const base = { cases: options.cases, seed: options.seed ?? randomSeed(), only: options.only, log: options.log };
  if (target === 'marathon-events') return fuzzMarathonEvents(base);
  if (target === 'marathon-listings') return fuzzMarathonListings(base);
  const rig = options.rig ?? (await startFuzzRig());
  try {
    switch (target) {
      case 'agent-e2e':
        return await fuzzAgentE2e({ ...base, rig });
      case 'policies':
        return await fuzzPolicies({ ...base, rig });
      case 'push':
        return await fuzzPush({ ...base, rig });
      case 'requests':
        return await fuzzRequests({ ...base, rig, mark: `m-${base.seed}-${base.cases}` });
      default:
        throw new Error(`no runner for ${target}`);
    }
  } finally {
    if (!options.rig) await rig.stop();
  }
}
