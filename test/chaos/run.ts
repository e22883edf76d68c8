/**
 * `npm run chaos`: every fault at full length under continuous load through
 * nginx, then the HAProxy node's faults, then every fuzz target at 10,000 cases. Prints what clients saw per
 * fault and what each fuzz target did, writes bench/results/chaos.json, and
 * exits 1 when anything failed beyond what the fault allows.
 *
 *   npm run chaos [-- --short] [-- --only NAME] [-- --cases N]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { FAULTS, type ChaosScale } from './faults.js';
import { ChaosRig } from './rig.js';
import { formatResults, runFault, type FaultResult } from './run-fault.js';
import { runFuzzTargets, type FuzzSummary } from './fuzz-targets.js';
import { formatHaproxyResults, HAPROXY_FAULTS, runHaproxyFault, type HaproxyFaultResult } from './haproxy-faults.js';
import { HaproxyChaosRig } from './haproxy-rig.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { short: { type: 'boolean' }, only: { type: 'string' }, cases: { type: 'string' }, 'no-fuzz': { type: 'boolean' } } });
  const scale: ChaosScale = values.short ? 'short' : 'full';
  const cases = Number(values.cases ?? (scale === 'full' ? 10_000 : 1_000));
  const faults = FAULTS.filter((f) => values.only === undefined || f.name.includes(values.only));
  const results: FaultResult[] = [];
  let ok = true;

  if (faults.length > 0) {
    console.log(`chaos: ${faults.length} faults at ${scale} length, under load through nginx`);
    const rig = await ChaosRig.start({ stallTimeoutSeconds: scale === 'full' ? 30 : 2 });
    try {
      for (const fault of faults) {
        console.log(`- ${fault.name}: ${fault.what}`);
        const result = await runFault(rig, fault, scale);
        results.push(result);
        const passed = result.failed <= result.allowedFailures && result.workerDeaths.length === 0;
        ok &&= passed;
        console.log(`  sent ${result.sent}, failed ${result.failed} (allowed ${result.allowedFailures}), worst ${result.worstMs} ms, ${result.seconds} s${passed ? '' : '  FAILED'}`);
        for (const line of [...result.failures, ...result.workerDeaths]) console.log(`    ${line}`);
      }
    } finally {
      await rig.stop();
    }
    console.log(`\n${formatResults(results)}\n`);
  }

  // The HAProxy node's faults (one length: each fault waits for what it checks).
  const haproxyFaults = HAPROXY_FAULTS.filter((f) => values.only === undefined || f.name.includes(values.only));
  const haproxyResults: HaproxyFaultResult[] = [];
  if (haproxyFaults.length > 0) {
    console.log(`chaos: ${haproxyFaults.length} faults on an HAProxy node, under HTTP keep-alive and TCP load`);
    const rig = await HaproxyChaosRig.start();
    try {
      for (const fault of haproxyFaults) {
        console.log(`- ${fault.name}: ${fault.what}`);
        const result = await runHaproxyFault(rig, fault);
        haproxyResults.push(result);
        const passed = result.failed <= result.allowed && !result.failures.some((f) => /^\d{3}:/.test(f));
        ok &&= passed;
        console.log(`  HTTP ${result.sent}, TCP ${result.tcpSent}, failed ${result.failed} (allowed ${result.allowed})${passed ? '' : '  FAILED'}`);
        for (const line of result.failures) console.log(`    ${line}`);
      }
    } finally {
      await rig.stop();
    }
    console.log(`\n${formatHaproxyResults(haproxyResults)}\n`);
  }

  let fuzz: FuzzSummary[] = [];
  if (!values['no-fuzz'] && values.only === undefined) {
    console.log(`fuzz: ${cases} cases per target`);
    fuzz = await runFuzzTargets(cases, (line) => console.log(line));
    ok &&= fuzz.every((f) => f.crashes === 0 && f.failureCount === 0);
  }

  const out = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'chaos.json'), `${JSON.stringify({ at: new Date().toISOString(), scale, faults: results, haproxyFaults: haproxyResults, fuzz }, null, 2)}\n`);
  console.log(ok ? 'chaos: every fault and fuzz target passed' : 'chaos: FAILED');
  return ok ? 0 : 1;
}

process.exit(await main());
