import { describe, expect, it } from 'vitest';
import { fleetView, policiesSummary, type NodeHeartbeat } from '../../agent/core/fleet-view.js';
import { formatFleet } from '../../agent/cli/watch-command.js';

const NOW = 1_000_000;
const node = (nodeId: string, extra: Partial<NodeHeartbeat> = {}): NodeHeartbeat => ({
  nodeId,
  heartbeatAt: NOW - 1_000,
  startedAt: 0,
  tableVersion: 't1',
  apiUrl: null,
  dataPlane: 'nginx',
  group: null,
  heartbeatMs: 2_000,
  lastPushAt: NOW - 5_000,
  policies: { count: 2, digest: 'p1' },
  live: true,
  ...extra,
});
const self = { nodeId: 'a', group: null, tableVersion: 't1', policies: { digest: 'p1' } };

describe('fleetView', () => {
  it.each([
    { title: 'in step', n: node('b'), problems: [], table: true, policies: true },
    { title: 'another table', n: node('b', { tableVersion: 't0' }), problems: ['table t0, not t1'], table: false, policies: true },
    { title: 'no table', n: node('b', { tableVersion: null }), problems: ['its data plane holds no routing table'], table: null, policies: true },
    { title: 'other policies', n: node('b', { policies: { count: 2, digest: 'p2' } }), problems: ['applies other split policies'], table: true, policies: false },
    { title: 'a late heartbeat (3 periods), still live', n: node('b', { heartbeatAt: NOW - 7_000 }), problems: ['heartbeat 7 s old'], table: true, policies: true },
    { title: 'no heartbeat within the TTL', n: node('b', { heartbeatAt: NOW - 12_000, live: false }), problems: ['no heartbeat for 12 s'], table: true, policies: true },
    { title: 'its agent stopped', n: node('b', { stoppedAt: NOW - 3_000, heartbeatAt: NOW - 3_000, live: false }), problems: ['agent stopped 3 s ago; its data plane keeps the last table'], table: true, policies: true },
    { title: 'another group: another table by design', n: node('b', { group: 'edge', tableVersion: 't9', policies: { count: 0, digest: 'x' } }), problems: [], table: null, policies: null },
    { title: 'an agent too old to tell its policies', n: node('b', { policies: undefined }), problems: [], table: true, policies: null },
  ])('$title', ({ n, problems, table, policies }) => {
    const [view] = fleetView([n], self, [], NOW);
    expect(view?.problems).toEqual(problems);
    expect(view?.outOfStep).toBe(problems.length > 0);
    expect([view?.tableMatches, view?.policiesMatch]).toEqual([table, policies]);
  });

  it('counts the drains waiting for each live node: no ack, requests in flight, or not settled', () => {
    const drains = [
      { taskId: 't.1', acks: { a: { inflight: 0, settled: true }, b: { inflight: 2, settled: true } } },
      { taskId: 't.2', acks: { a: { inflight: 0, settled: false } } },
      { taskId: 't.3', acks: { a: { inflight: 0, settled: true }, b: { inflight: 0, settled: true } } },
    ];
    const views = fleetView([node('a'), node('b'), node('c', { live: false, heartbeatAt: NOW - 20_000 })], self, drains, NOW);
    expect(views.map((v) => [v.nodeId, v.self, v.drainsAwaiting])).toEqual([
      ['a', true, 1],
      ['b', false, 2],
      ['c', false, 0],
    ]);
  });

  it('digests a node’s policies independently of their order', () => {
    const md5 = (t: string) => `h(${t})`;
    const one = policiesSummary(new Map([['shop', 'x'], ['api', 'y'], ['none', null]]), md5);
    const two = policiesSummary(new Map([['api', 'y'], ['shop', 'x']]), md5);
    expect(one).toEqual({ count: 2, digest: 'h(api\ty\nshop\tx)'.slice(0, 12) });
    expect(two).toEqual(one);
    expect(policiesSummary(null, md5)).toBeNull();
  });
});

describe('edgeroute watch --fleet', () => {
  it('prints a line per node, the out-of-step ones with their reasons', () => {
    const text = formatFleet(fleetView([node('a'), node('b', { tableVersion: 't0', lastPushAt: null })], self, [], NOW), NOW);
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^node\s+plane\s+table\s+vs this\s+policies\s+last push\s+drains\s+heartbeat\s+status$/),
      expect.stringMatching(/^a \(this\)\s+nginx\s+t1\s+same\s+2 same\s+5 s ago\s+0\s+1 s ago\s+in step$/),
      expect.stringMatching(/^b\s+nginx\s+t0\s+DIFFERS\s+2 same\s+–\s+0\s+1 s ago\s+OUT OF STEP: table t0, not t1$/),
    ]);
  });
});
