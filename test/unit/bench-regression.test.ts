// The regression check of `npm run bench` against BENCHMARKS.md's baseline.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { figureAt, readBaseline, regressions } from '../../bench/lib/regression.js';
import { BENCHMARKS } from '../../bench/suite.js';

const baseline = readBaseline(readFileSync(join(PROJECT_ROOT, 'BENCHMARKS.md'), 'utf8'));

describe('the benchmarks regression baseline', () => {
  it('names benchmarks that exist and figures their committed results report', () => {
    expect(baseline.length).toBeGreaterThan(5);
    for (const row of baseline) {
      expect(BENCHMARKS.map((b) => b.name)).toContain(row.benchmark);
      const committed = JSON.parse(readFileSync(join(PROJECT_ROOT, 'bench', 'results', `${row.benchmark}.json`), 'utf8')) as { smoke: boolean; results: unknown };
      expect(committed.smoke, `${row.benchmark}.json is a smoke run`).toBe(false);
      expect(figureAt(committed.results, row.figure), `${row.benchmark} ${row.figure}`).toBeTypeOf('number');
    }
  });

  it('flags a ratio more than 3 % below its figure, and one no longer reported', () => {
    const rows = [
      { benchmark: 'dataplane', figure: 'ratio_b_a', committed: 0.9 },
      { benchmark: 'dataplane', figure: 'cpu.ratio', committed: 1 },
      { benchmark: 'scale', figure: 'ratio', committed: 1 },
    ];
    const found = regressions('dataplane', { ratio_b_a: 0.86, cpu: {} }, rows);
    expect(found.map((r) => [r.figure, r.value])).toEqual([
      ['ratio_b_a', 0.86],
      ['cpu.ratio', null],
    ]);
    expect(found[0]!.message).toBe('dataplane: ratio_b_a 0.86 is 4.4 % below the committed 0.9 (BENCHMARKS.md; 3 % allowed)');
    expect(found[1]!.message).toContain('not in the results any more');
    // 2.2 % below, or above: not a regression.
    expect(regressions('dataplane', { ratio_b_a: 0.88, cpu: { ratio: 1.2 } }, rows)).toEqual([]);
    // A run that counted only some variants: what it reports is compared, what it left out is not missing.
    expect(regressions('dataplane', { partial: true, ratio_b_a: 0.86 }, rows).map((r) => [r.figure, r.value])).toEqual([['ratio_b_a', 0.86]]);
  });

  it('refuses a row it cannot read rather than skip it', () => {
    expect(() => readBaseline('# B\n\n## Regression baseline\n\n| benchmark | figure | committed |\n|---|---|---|\n| dataplane | `ratio_b_a` | soon |\n')).toThrow(/cannot read the row/);
    expect(() => readBaseline('# B\n')).toThrow(/no "## Regression baseline"/);
  });
});
