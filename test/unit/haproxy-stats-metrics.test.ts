// HAProxy's counters as per app/version Prometheus metrics: the monotonic
// bookkeeping (restarts, servers added again, pool backends handed from one
// app to another) and the labelling of `show stat` rows.
import { describe, expect, it } from 'vitest';
import { MonotonicCounters } from '../../agent/dataplane/monotonic-counters.js';
import { labelStatRows, type BackendOwner, type StatsLabels } from '../../agent/dataplane/haproxy/stats-metrics.js';

describe('MonotonicCounters', () => {
  const read = (source: string, owner: string | null, ...values: number[]) => ({ source, owner, values });

  it('credits first sight whole, then the differences', () => {
    const c = new MonotonicCounters(2);
    expect(c.add('g1', [read('pool-1', 'a', 10, 5)]).get('a')).toEqual([10, 5]);
    expect(c.add('g1', [read('pool-1', 'a', 13, 5)]).get('a')).toEqual([13, 5]);
  });

  it('stays monotonic when HAProxy restarts (a new generation) and when a value goes down', () => {
    const c = new MonotonicCounters(1);
    c.add('g1', [read('pool-1', 'a', 100)]);
    // Restarted, and already counted 30 more: not 30 - 100.
    expect(c.add('g2', [read('pool-1', 'a', 130)]).get('a')).toEqual([230]);
    // A server deleted and added again starts from 0.
    expect(c.add('g2', [read('pool-1', 'a', 4)]).get('a')).toEqual([234]);
  });

  it('gives a pool backend handed to another app none of the old app\'s totals', () => {
    const c = new MonotonicCounters(1);
    c.add('g1', [read('pool-1', 'old', 500)]);
    // The old app left; the backend is nobody's while its servers drain.
    expect(c.add('g1', [read('pool-1', null, 510)]).has('old')).toBe(false);
    expect(c.add('g1', [read('pool-1', 'new', 514)]).get('new')).toEqual([4]);
    // Handed over between two readings: that interval is credited to neither.
    c.add('g1', [read('pool-2', 'x', 50)]);
    expect(c.add('g1', [read('pool-2', 'y', 70)]).get('y')).toEqual([0]);
    expect(c.add('g1', [read('pool-2', 'y', 75)]).get('y')).toEqual([5]);
  });

  it('sums the sources of one owner and forgets owners no reading names', () => {
    const c = new MonotonicCounters(1);
    expect(c.add('g', [read('pool-1', 'a', 1), read('tcp-pool-1', 'a', 2)]).get('a')).toEqual([3]);
    expect(c.add('g', [read('pool-1', 'b', 1)]).has('a')).toBe(false);
  });
});

describe('labelStatRows', () => {
  const header = '# pxname,svname,qcur,scur,stot,bin,bout,econ,eresp,wretr,wredis,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,qtime,ctime,rtime,ttime,';
  const csv = [
    header,
    'pool-1,t1,0,2,40,100,900,1,0,0,0,0,38,0,1,1,0,1,12,14,',
    'pool-1,BACKEND,0,2,40,100,900,1,0,0,0,0,38,0,1,1,0,1,12,14,',
    'pool-2,BACKEND,0,0,7,0,0,0,0,0,0,0,7,0,0,0,0,0,0,0,',
    'pool-2,tX,0,0,7,0,0,0,0,0,0,0,7,0,0,0,0,0,0,0,',
    'tcp-pool-1,BACKEND,0,1,3,10,10,0,0,0,0,0,0,0,0,0,0,0,0,0,',
    '',
  ].join('\n');
  const owners = new Map<string, BackendOwner>([
    ['pool-1', { app: '/web', version: 'stable', mode: 'http' }],
    ['tcp-pool-1', { app: '/web', version: 'stable', mode: 'tcp' }],
  ]);
  const labels: StatsLabels = { backendOwners: () => owners, serverTask: (_b, s) => (s === 't1' ? 'web.task-1' : null) };

  it('labels the rows of held backends and their servers, and lists the backends nobody holds', () => {
    const { rows, unowned } = labelStatRows(csv, labels);
    expect(unowned.map((u) => [u.source, u.columns.get('stot')])).toEqual([['pool-2', 7]]);
    expect(rows.map((r) => [r.source, r.mode, r.labels])).toEqual([
      ['pool-1/t1', 'http', { app: '/web', version: 'stable', task: 'web.task-1' }],
      ['pool-1', 'http', { app: '/web', version: 'stable' }],
      ['tcp-pool-1', 'tcp', { app: '/web', version: 'stable' }],
    ]);
    expect(rows[1]!.columns.get('hrsp_2xx')).toBe(38);
    expect(rows[1]!.columns.get('rtime')).toBe(12);
  });

  it('refuses a reply without the CSV header', () => {
    expect(() => labelStatRows('Unknown command', labels)).toThrow(/CSV header/);
  });
});
