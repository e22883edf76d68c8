/**
 * The regression check of `npm run bench`: BENCHMARKS.md's "Regression
 * baseline" table names, per benchmark, the ratios that must hold (a path
 * into the benchmark's results, higher is better) and the figure committed
 * for each. A run whose ratio falls more than 3 % below its figure, or that
 * no longer reports it, is a regression, said loudly and failing the run.
 * A run that says it counted only part of its variants (`partial: true` in
 * its results, e.g. INSTR_ONLY) is compared on the figures it reports.
 */

export interface BaselineRow {
  readonly benchmark: string;
  /** Dotted path into the benchmark's results, e.g. `ratio_b_a` or `dataplane.ratio`. */
  readonly figure: string;
  readonly committed: number;
}

export interface Regression {
  readonly benchmark: string;
  readonly figure: string;
  readonly committed: number;
  /** null: the run did not report the figure. */
  readonly value: number | null;
  readonly message: string;
}

export const BASELINE_HEADING = '## Regression baseline';
export const TOLERANCE = 0.03;

/** The rows of the table under BASELINE_HEADING: `| benchmark | `figure` | committed | ... |`. */
export function readBaseline(markdown: string): BaselineRow[] {
  const start = markdown.indexOf(`\n${BASELINE_HEADING}\n`);
  if (start < 0) throw new Error(`BENCHMARKS.md has no "${BASELINE_HEADING}" section`);
  const section = markdown.slice(start + BASELINE_HEADING.length + 2);
  const end = section.search(/\n## /);
  const rows: BaselineRow[] = [];
  for (const line of (end < 0 ? section : section.slice(0, end)).split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length < 3 || /^-+$/.test(cells[0] ?? '') || cells[0] === 'benchmark') continue;
    const figure = (cells[1] ?? '').replace(/`/g, '');
    const committed = Number((cells[2] ?? '').replace(/\*/g, ''));
    if (!cells[0] || !figure || !Number.isFinite(committed)) throw new Error(`BENCHMARKS.md regression baseline: cannot read the row "${line}"`);
    rows.push({ benchmark: cells[0], figure, committed });
  }
  return rows;
}

/** The number at a dotted path of a results object; undefined when absent or not a number. */
export function figureAt(results: unknown, path: string): number | undefined {
  let at: unknown = results;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}

/** The baseline's figures for `benchmark` that this run's results fall short of. */
export function regressions(benchmark: string, results: unknown, baseline: readonly BaselineRow[], tolerance = TOLERANCE): Regression[] {
  const found: Regression[] = [];
  const partial = results !== null && typeof results === 'object' && (results as { partial?: unknown }).partial === true;
  for (const row of baseline.filter((r) => r.benchmark === benchmark)) {
    const value = figureAt(results, row.figure);
    if (value === undefined) {
      if (partial) continue;
      found.push({ ...row, value: null, message: `${benchmark}: ${row.figure} is not in the results any more (BENCHMARKS.md's baseline says ${row.committed})` });
    } else if (value < row.committed * (1 - tolerance)) {
      const drop = ((row.committed - value) / row.committed) * 100;
      found.push({ ...row, value, message: `${benchmark}: ${row.figure} ${value} is ${drop.toFixed(1)} % below the committed ${row.committed} (BENCHMARKS.md; ${Math.round(tolerance * 100)} % allowed)` });
    }
  }
  return found;
}
