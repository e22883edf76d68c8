/** What a fuzz run reports, and the bookkeeping every target shares. */

export interface FuzzFailure {
  readonly target: string;
  readonly seed: number;
  /** Replays alone: runFuzz(target, { seed, cases: index + 1, only: [index] }). */
  readonly index: number;
  readonly reason: string;
  /** The start of the input, escaped, for the report. */
  readonly input: string;
  readonly notes: readonly string[];
}

export interface FuzzSummary {
  readonly target: string;
  readonly seed: number;
  readonly cases: number;
  /** Inputs the code under test refused (with a message). */
  readonly rejected: number;
  /** Inputs it took. */
  readonly accepted: number;
  /** Uncaught exceptions, a dead agent, nginx workers that exited or changed. */
  readonly crashes: number;
  /** The slowest single case, in milliseconds. */
  readonly worstMs: number;
  readonly durationMs: number;
  /** Broken expectations (crashes included); at most MAX_KEPT_FAILURES are kept, `failureCount` counts all. */
  readonly failures: readonly FuzzFailure[];
  readonly failureCount: number;
  /** Target-specific findings: disagreements, timings, counts by kind. */
  readonly details: Readonly<Record<string, unknown>>;
}

const MAX_KEPT_FAILURES = 25;
const INPUT_PREVIEW = 300;

/** JSON-escaped and cut, so a failure line stays one readable line. */
export function preview(input: string | Uint8Array, max = INPUT_PREVIEW): string {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const cut = text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
  return JSON.stringify(cut);
}

export class CaseBook {
  rejected = 0;
  accepted = 0;
  crashes = 0;
  worstMs = 0;
  failureCount = 0;
  readonly failures: FuzzFailure[] = [];
  readonly details: Record<string, unknown> = {};
  private readonly started = Date.now();

  constructor(
    readonly target: string,
    readonly seed: number,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {}

  /** Runs one case's work, timing it; `index` names the case in details.worstCase. */
  timed<T>(index: number, work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      this.observe(performance.now() - started, index);
    }
  }

  async timedAsync<T>(index: number, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.observe(performance.now() - started, index);
    }
  }

  observe(ms: number, index: number): void {
    if (ms > this.worstMs) {
      this.worstMs = ms;
      this.details.worstCase = index;
    }
  }

  fail(index: number, reason: string, input: string | Uint8Array = '', notes: readonly string[] = [], crash = false): void {
    this.failureCount++;
    if (crash) this.crashes++;
    const failure: FuzzFailure = { target: this.target, seed: this.seed, index, reason, input: preview(input), notes };
    if (this.failures.length < MAX_KEPT_FAILURES) this.failures.push(failure);
    if (this.failureCount <= MAX_KEPT_FAILURES) {
      this.log(
        `fuzz ${this.target}: case ${index} of seed ${this.seed} failed: ${reason}\n` +
          `  input ${failure.input}${notes.length > 0 ? `\n  mutations: ${notes.join('; ')}` : ''}\n` +
          `  replay: runFuzz('${this.target}', { seed: ${this.seed}, cases: ${index + 1}, only: [${index}] }) or EDGEROUTE_FUZZ_SEED=${this.seed}`,
      );
    }
  }

  /** Adds one to a counter in details (e.g. rejections by reason). */
  count(key: string, by = 1): void {
    this.details[key] = ((this.details[key] as number | undefined) ?? 0) + by;
  }

  /** Keeps a few examples of something worth reporting (not a failure). */
  example(key: string, value: unknown, max = 5): void {
    const list = (this.details[key] as unknown[] | undefined) ?? [];
    if (list.length < max) list.push(value);
    this.details[key] = list;
  }

  summary(cases: number): FuzzSummary {
    return {
      target: this.target,
      seed: this.seed,
      cases,
      rejected: this.rejected,
      accepted: this.accepted,
      crashes: this.crashes,
      worstMs: Math.round(this.worstMs * 10) / 10,
      durationMs: Date.now() - this.started,
      failures: this.failures,
      failureCount: this.failureCount,
      details: this.details,
    };
  }
}

/** What every fuzz target is run with. */
export interface TargetRun {
  readonly cases: number;
  readonly seed: number;
  /** Case indices to run instead of all (a replay). */
  readonly only?: readonly number[];
  readonly log?: (line: string) => void;
}

/** Case indices to run: all of 0..cases-1, or only the ones asked for (a replay). */
export function caseIndices(cases: number, only?: readonly number[]): number[] {
  return only ? [...only] : Array.from({ length: cases }, (_, i) => i);
}

/** A careless merge of a fuzzed object would show up here. */
export function prototypePolluted(): string | null {
  const probe = {} as Record<string, unknown>;
  for (const key of ['polluted', 'toString', 'x']) {
    if (key === 'toString' ? typeof probe.toString !== 'function' : probe[key] !== undefined) return `Object.prototype.${key} was changed`;
  }
  return null;
}
