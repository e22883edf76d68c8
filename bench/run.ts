/**
 * `npm run bench [-- NAME...] [-- --smoke]`: runs the benchmarks, writes
 * bench/results/NAME.json for each and prints one summary line per benchmark.
 * A full-size run checks each benchmark's ratios against BENCHMARKS.md's
 * regression baseline and exits 1 if one fell more than 3 % below it.
 */
import { execaSync } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../agent/project-paths.js';
import type { Benchmark } from './lib/benchmark.js';
import { readBaseline, regressions, type BaselineRow, type Regression } from './lib/regression.js';
import { BENCHMARKS } from './suite.js';

export function machine(): Record<string, unknown> {
  const nginx = execaSync('/usr/sbin/nginx', ['-v'], { reject: false });
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nginx: String(nginx.stderr).trim(),
  };
}

export async function runBenchmark(bench: Benchmark, smoke: boolean, resultsDir: string, baseline: readonly BaselineRow[] = []): Promise<{ line: string; met: boolean; regressions: Regression[] }> {
  const started = Date.now();
  const outcome = await bench.run({ smoke, progress: (m) => process.stderr.write(`  [${bench.name}] ${m}\n`) });
  const missed = outcome.targets.filter((t) => !t.met);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, `${bench.name}.json`),
    JSON.stringify(
      {
        name: bench.name,
        description: bench.description,
        command: `npm run bench -- ${bench.name}${smoke ? ' --smoke' : ''}`,
        smoke,
        date: new Date().toISOString(),
        seconds: Math.round((Date.now() - started) / 1000),
        machine: machine(),
        summary: outcome.summary,
        targets: outcome.targets,
        results: outcome.results,
      },
      null,
      2,
    ),
  );
  const verdict = outcome.targets.length === 0 ? '' : missed.length === 0 ? ' | targets met' : ` | TARGET MISSED: ${missed.map((t) => `${t.name} ${t.value} (want ${t.goal})`).join('; ')}`;
  // Tiny sizes measure nothing worth comparing.
  const found = smoke ? [] : regressions(bench.name, outcome.results, baseline);
  return { line: `${bench.name}: ${outcome.summary}${verdict}`, met: missed.length === 0, regressions: found };
}

async function main(argv: string[]): Promise<number> {
  const smoke = argv.includes('--smoke');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    return 2;
  }
  const chosen = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name));
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  const baseline = readBaseline(readFileSync(join(PROJECT_ROOT, 'BENCHMARKS.md'), 'utf8'));
  const found: Regression[] = [];
  for (const bench of chosen) {
    process.stderr.write(`${bench.name}: ${bench.description}\n`);
    const result = await runBenchmark(bench, smoke, dir, baseline);
    console.log(result.line);
    for (const r of result.regressions) console.log(`REGRESSION: ${r.message}`);
    found.push(...result.regressions);
  }
  if (found.length > 0) {
    console.log(`\n${'!'.repeat(72)}\n${found.length} REGRESSION(S) against BENCHMARKS.md's baseline:\n${found.map((r) => `  ${r.message}`).join('\n')}\nRun it again on a quiet machine; if it holds, find the change that caused it (or, for an accepted cost, update the baseline with the reason).\n${'!'.repeat(72)}`);
    return 1;
  }
  return 0;
}

if (process.argv[1]?.endsWith('run.js')) process.exit(await main(process.argv.slice(2)));
