// Every benchmark runs end to end at tiny sizes: proves `npm run bench` works
// on this machine. Timings are not asserted here; bench/ is where they live.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBenchmark } from '../../bench/run.js';
import { BENCHMARKS } from '../../bench/suite.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeroute-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('benchmarks (smoke)', () => {
  it('has the benchmarks the issues ask for', () => {
    expect(BENCHMARKS.map((b) => b.name)).toEqual(['dataplane', 'dataplane-parts', 'instructions', 'publication', 'policy', 'scale', 'zero-loss', 'idle-race', 'path-scale', 'tls-handshake', 'websockets', 'haproxy', 'peers', 'traffic-memory', 'traffic-publication', 'fleet']);
  });

  it.each(BENCHMARKS.map((b) => [b.name, b] as const))('%s runs and writes its results', async (name, bench) => {
    const { line } = await runBenchmark(bench, true, dir);
    expect(line.startsWith(`${name}: `)).toBe(true);
    expect(line).not.toContain('\n');
    const written = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { name: string; smoke: boolean; summary: string; machine: { cpus: number }; results: object };
    expect(written).toMatchObject({ name, smoke: true });
    expect(written.machine.cpus).toBeGreaterThan(0);
    expect(Object.keys(written.results).length).toBeGreaterThan(0);
  }, 120_000);
});
