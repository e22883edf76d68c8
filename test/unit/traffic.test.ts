import { describe, expect, it } from 'vitest';
import { addWindows, appTraffic, fleetAppTraffic, quantile, type TrafficWindow } from '../../agent/core/traffic.js';
import { TrafficHistory, type TrafficDelta } from '../../agent/observe/traffic-history.js';

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1];
const window = (w: Partial<TrafficWindow>): TrafficWindow => ({ requests: 0, errors: 0, requestsPerSecond: 0, buckets: null, meanSeconds: null, ...w });

describe('quantile (histogram_quantile)', () => {
  it.each([
    { title: 'in the first bucket, from 0', counts: [10, 0, 0, 0, 0, 0], q: 0.5, want: 0.0025 },
    { title: 'linear within its bucket', counts: [0, 0, 10, 0, 0, 0], q: 0.5, want: 0.0175 },
    { title: 'p99 of a mix', counts: [90, 0, 0, 0, 10, 0], q: 0.99, want: 0.05 + 0.05 * (9 / 10) },
    { title: 'above the last bound: the last bound', counts: [0, 0, 0, 0, 0, 4], q: 0.5, want: 0.1 },
    { title: 'no observation', counts: [0, 0, 0, 0, 0, 0], q: 0.5, want: null },
  ])('$title', ({ counts, q, want }) => {
    const got = quantile(BOUNDS, counts, q);
    if (want === null) expect(got).toBeNull();
    else expect(got).toBeCloseTo(want, 9);
  });
});

describe('appTraffic: versions side by side', () => {
  it('gives rates, shares, 5xx ratios and quantiles, the default version first', () => {
    const t = appTraffic(
      'shop',
      'stable',
      new Map([
        ['grey', window({ requests: 20, requestsPerSecond: 2, buckets: [20, 0, 0, 0, 0, 0] })],
        ['stable', window({ requests: 80, requestsPerSecond: 8, buckets: [80, 0, 0, 0, 0, 0] })],
      ]),
      BOUNDS,
    );
    expect(t.requestsPerSecond).toBe(10);
    expect(t.versions.map((v) => [v.version, v.share, v.errorRatio, v.p50Ms, v.p99Ms, v.flags])).toEqual([
      ['stable', 0.8, 0, 2.5, 4.95, []],
      ['grey', 0.2, 0, 2.5, 4.95, []],
    ]);
  });

  it.each([
    { title: '5xx clearly above the default', grey: { requests: 100, errors: 30 }, stable: { requests: 400, errors: 4 }, flags: ['5xx 30.0 % (stable 1.0 %)'] },
    { title: 'as many 5xx as the default: no flag', grey: { requests: 100, errors: 1 }, stable: { requests: 400, errors: 4 }, flags: [] },
    { title: 'too few errors to say', grey: { requests: 100, errors: 4 }, stable: { requests: 400, errors: 0 }, flags: [] },
    { title: 'too few requests to say', grey: { requests: 10, errors: 10 }, stable: { requests: 400, errors: 0 }, flags: [] },
    { title: 'the default served too little: 5xx alone', grey: { requests: 100, errors: 50 }, stable: { requests: 3, errors: 0 }, flags: ['5xx 50.0 %'] },
  ])('$title', ({ grey, stable, flags }) => {
    const t = appTraffic('shop', 'stable', new Map([['stable', window(stable)], ['grey', window(grey)]]), null);
    expect(t.versions.find((v) => v.version === 'grey')?.flags).toEqual(flags);
    expect(t.versions.find((v) => v.version === 'stable')?.flags).toEqual([]);
  });

  it('flags a p99 at least twice the default and 50 ms slower; a mean where there is no histogram', () => {
    const slow = appTraffic('a', 'stable', new Map([['stable', window({ requests: 500, buckets: [500, 0, 0, 0, 0, 0] })], ['grey', window({ requests: 500, buckets: [0, 0, 0, 0, 500, 0] })]]), BOUNDS);
    expect(slow.versions[1]?.flags).toEqual(['p99 99.5 ms (stable 5.0 ms)']);
    const close = appTraffic('a', 'stable', new Map([['stable', window({ requests: 500, buckets: [500, 0, 0, 0, 0, 0] })], ['grey', window({ requests: 500, buckets: [0, 500, 0, 0, 0, 0] })]]), BOUNDS);
    expect(close.versions[1]?.flags).toEqual([]);
    const mean = appTraffic('a', 'stable', new Map([['stable', window({ requests: 100, meanSeconds: 0.01 })], ['grey', window({ requests: 100, meanSeconds: 0.3 })]]), null);
    expect(mean.versions[1]?.flags).toEqual(['mean latency 300.0 ms (stable 10.0 ms)']);
  });

  // A p99 of fewer than 500 requests is its slowest few: one paused request would flag the version.
  it.each([
    { title: '500 requests a side, 6 slow: the p99 flags', requests: 500, slow: 6, flags: ['p99 58.3 ms (stable 5.0 ms)'] },
    { title: '499 a side, 6 slow: the p90 compared, no flag', requests: 499, slow: 6, flags: [] },
    { title: '100 a side, 2 slow: the p90 compared, no flag', requests: 100, slow: 2, flags: [] },
    { title: '100 a side, 20 % slow: the p90 flags', requests: 100, slow: 20, flags: ['p90 75.0 ms (stable 4.5 ms)'] },
    { title: '49 a side, all slow: too few for any quantile', requests: 49, slow: 49, flags: [] },
  ])('$title', ({ requests, slow, flags }) => {
    const t = appTraffic('a', 'stable', new Map([
      ['stable', window({ requests, buckets: [requests, 0, 0, 0, 0, 0] })],
      ['grey', window({ requests, buckets: [requests - slow, 0, 0, 0, slow, 0] })],
    ]), BOUNDS);
    expect(t.versions[1]?.flags).toEqual(flags);
  });
});

describe('the fleet adds up', () => {
  it('rates, counts and histograms add; means weigh by requests', () => {
    const sum = addWindows([
      window({ requests: 10, errors: 1, requestsPerSecond: 1, buckets: [10, 0], meanSeconds: 0.01 }),
      window({ requests: 30, errors: 0, requestsPerSecond: 3, buckets: [20, 10], meanSeconds: 0.03 }),
    ]);
    expect(sum).toEqual({ requests: 40, errors: 1, requestsPerSecond: 4, buckets: [30, 10], meanSeconds: expect.closeTo(0.025, 12) });
    expect(addWindows([window({ requests: 1, buckets: [1] }), window({ requests: 1 })]).buckets).toBeNull();
  });

  it('one app on several nodes compares as on one', () => {
    const t = fleetAppTraffic('shop', [
      { node: 'b', defaultVersion: 'stable', bounds: BOUNDS, versions: { stable: window({ requests: 40, requestsPerSecond: 4, buckets: [40, 0, 0, 0, 0, 0] }) } },
      { node: 'a', defaultVersion: 'stable', bounds: BOUNDS, versions: { stable: window({ requests: 60, requestsPerSecond: 6, buckets: [60, 0, 0, 0, 0, 0] }), grey: window({ requests: 20, errors: 20, requestsPerSecond: 2, buckets: [20, 0, 0, 0, 0, 0] }) } },
    ]);
    expect(t.nodes).toEqual(['a', 'b']);
    expect(t.versions.map((v) => [v.version, v.requests, v.requestsPerSecond, v.share, v.errorRatio])).toEqual([
      ['stable', 100, 10, 10 / 12, 0],
      ['grey', 20, 2, 2 / 12, 1],
    ]);
    expect(t.versions[1]?.flags).toEqual(['5xx 100.0 % (stable 0.0 %)']);
  });
});

describe('TrafficHistory', () => {
  const SLOT = 1_000;
  const delta = (app: string, version: string, requests: number, errors = 0, bucket = 0): TrafficDelta => {
    const buckets = new Array<number>(BOUNDS.length + 1).fill(0);
    buckets[bucket] = requests;
    return { app, version, requests, errors, buckets, latencySeconds: requests * 0.001, recentMeanSeconds: null };
  };

  it('keeps each slot of the window, and the live window is this slot and the one before', () => {
    const h = new TrafficHistory(BOUNDS, { slotMs: SLOT, slots: 5, maxSeries: 10 });
    h.record(10_000, 500, [delta('shop', 'stable', 8), delta('shop', 'grey', 2, 2)]);
    h.record(10_500, 500, [delta('shop', 'stable', 8), delta('shop', 'grey', 2, 2)]);
    h.record(11_000, 500, [delta('shop', 'stable', 4, 0, 3)]);
    const [shop] = h.summaries(() => 'stable');
    // 20 stable and 4 grey over 1.5 s.
    expect(shop?.versions.map((v) => [v.version, v.requests, v.errors, v.requestsPerSecond])).toEqual([
      ['stable', 20, 0, 20 / 1.5],
      ['grey', 4, 4, 4 / 1.5],
    ]);
    expect(shop?.versions[1]?.flags).toEqual([]); // 4 grey requests: too few to compare

    const plot = h.history('shop', ['stable', 'grey']);
    // From the first slot read: slots 7-9 came before the first reading.
    expect(plot.times).toEqual([10, 11]);
    const stable = plot.versions.find((v) => v.version === 'stable')!;
    const grey = plot.versions.find((v) => v.version === 'grey')!;
    expect(stable.requestsPerSecond).toEqual([16, 8]);
    expect(stable.share).toEqual([0.8, 1]);
    expect(grey.errorRatio).toEqual([1, null]);
    expect(stable.p50Ms).toEqual([2.5, 37.5]);
  });

  it('drops slots older than the window, and a version idle for a whole window', () => {
    const h = new TrafficHistory(BOUNDS, { slotMs: SLOT, slots: 3, maxSeries: 10 });
    h.record(10_000, 1000, [delta('a', 'v', 5)]);
    h.record(12_000, 1000, [delta('b', 'v', 1)]);
    expect(h.history('a', ['v']).versions[0]?.requestsPerSecond).toEqual([5, null, 0]);
    h.record(13_000, 1000, []);
    expect(h.size).toEqual({ series: 1, rings: 1 });
    expect(h.summaries(() => null).map((s) => s.app)).toEqual(['b']);
    // Written again after a gap: a slot read without requests is 0, one never read (14) unknown.
    h.record(15_000, 1000, [delta('b', 'v', 3)]);
    expect(h.history('b', ['v']).versions[0]?.requestsPerSecond).toEqual([0, null, 3]);
  });

  it('keeps at most maxSeries rings: the others have live numbers, no plot', () => {
    const h = new TrafficHistory(null, { slotMs: SLOT, slots: 4, maxSeries: 2 });
    h.record(1_000, 1000, ['a', 'b', 'c'].map((app) => ({ ...delta(app, 'v', 10), buckets: null, latencySeconds: null, recentMeanSeconds: 0.02 })));
    expect(h.size).toEqual({ series: 3, rings: 2 });
    expect(h.overflowed).toBe(1);
    expect(h.summaries(() => 'v').map((s) => [s.app, s.versions[0]?.meanMs])).toEqual([['a', 20], ['b', 20], ['c', 20]]);
    expect(h.history('c', ['v']).versions).toEqual([]);
    expect(h.history('a', ['v']).versions[0]?.p50Ms).toEqual([20]);
  });
});
