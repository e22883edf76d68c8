/** What every benchmark gives the runner. */

export interface BenchContext {
  /** Tiny sizes: proves the benchmark runs, measures nothing worth quoting. */
  readonly smoke: boolean;
  /** Progress for the operator, on stderr. */
  progress(message: string): void;
}

export interface Target {
  readonly name: string;
  readonly value: number;
  readonly goal: string;
  readonly met: boolean;
}

export interface BenchOutcome {
  /** One line: the figures that matter. */
  readonly summary: string;
  readonly targets: readonly Target[];
  readonly results: Record<string, unknown>;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}

export function atLeast(name: string, value: number, goal: number): Target {
  return { name, value: round(value), goal: `>= ${goal}`, met: value >= goal };
}

export function atMost(name: string, value: number, goal: number): Target {
  return { name, value: round(value), goal: `<= ${goal}`, met: value <= goal };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The value below which `p` percent of the values lie (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
