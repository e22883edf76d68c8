import { describe, expect, it } from 'vitest';
import { LATENCY_BOUNDS, LATENCY_BUCKETS, latencyBucketsMap, parseLatencyTable } from '../../agent/dataplane/haproxy/latency-histogram.js';

describe("an HAProxy node's latency histogram", () => {
  it('maps µs to buckets by the bounds, with no gap and no overlap (the first range open below)', () => {
    const ranges = latencyBucketsMap()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^(\d*):(\d+) (\d+)$/.exec(l)!.slice(1).map((n) => (n === '' ? null : Number(n))));
    expect(ranges).toHaveLength(LATENCY_BOUNDS.length);
    expect(ranges[0]).toEqual([null, 1_000, 0]);
    ranges.forEach(([, high, bucket], i) => {
      expect([high, bucket]).toEqual([Math.round(LATENCY_BOUNDS[i]! * 1e6), i]);
      if (i > 0) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]! + 1);
    });
  });

  it("reads `show table`: backend id × 16 + bucket → that backend's counts", () => {
    const reply = [
      '# table: edgeroute-latency, type: integer, size:1048576, used:4',
      '0x563329fcdc08: key=48 use=0 exp=0 gpc0=2',
      '0x563329fce078: key=49 use=0 exp=0 gpc0=1',
      '0x7f96b4043018: key=53 use=0 exp=0 gpc0=7',
      `0x7f96b4043019: key=${5 * 16 + LATENCY_BUCKETS - 1} use=1 exp=0 gpc0=3`,
      '',
    ].join('\n');
    const table = parseLatencyTable(reply)!;
    expect([...table.keys()]).toEqual([3, 5]);
    expect(table.get(3)!.slice(0, 6)).toEqual([2, 1, 0, 0, 0, 7]);
    expect(table.get(5)![LATENCY_BUCKETS - 1]).toBe(3);
    expect(table.get(3)).toHaveLength(LATENCY_BUCKETS);
  });

  it('tells a haproxy.cfg without the table (rendered before it) from an empty table', () => {
    expect(parseLatencyTable('No such table\n\n')).toBeNull();
    expect(parseLatencyTable('# table: edgeroute-latency, type: integer, size:1024, used:0\n\n')?.size).toBe(0);
  });
});
