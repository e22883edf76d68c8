/** Every fuzz target (test/fuzz) for `npm run chaos`, one shared rig for the nginx targets. */
import { listFuzzTargets, randomSeed, runFuzz, startFuzzRig, type FuzzRig, type FuzzSummary } from '../fuzz/index.js';

export type { FuzzSummary } from '../fuzz/index.js';

export async function runFuzzTargets(cases: number, say: (line: string) => void): Promise<FuzzSummary[]> {
  const seed = randomSeed();
  say(`  seed ${seed} (replay: EDGEROUTE_FUZZ_SEED=${seed})`);
  const summaries: FuzzSummary[] = [];
  let rig: FuzzRig | null = null;
  try {
    for (const target of listFuzzTargets()) {
      if (target.needsRig) rig ??= await startFuzzRig();
      const summary = await runFuzz(target.name, { cases, seed, rig: rig ?? undefined, log: (line) => say(`    ${line}`) });
      summaries.push(summary);
      say(
        `- ${target.name}: ${summary.cases} cases, ${summary.rejected} rejected, ${summary.accepted} accepted, ${summary.crashes} crashes, ${summary.failureCount} failures, worst ${Math.round(summary.worstMs)} ms, ${(summary.durationMs / 1000).toFixed(1)} s`,
      );
    }
  } finally {
    await rig?.stop();
  }
  return summaries;
}
