import { describe, expect, it } from 'vitest';
import { judgeTask, warmupWeight, type PublicationSettings, type RememberedHealth } from '../../agent/core/lifecycle.js';
import type { HealthResult, MarathonTask } from '../../agent/core/marathon-types.js';

const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

function task(over: Partial<MarathonTask> = {}): MarathonTask {
  return {
    id: 't1',
    appId: '/web',
    host: '10.0.0.1',
    state: 'TASK_RUNNING',
    ports: [31000],
    ipAddresses: [],
    startedAt: iso(0),
    stagedAt: iso(-1000),
    version: null,
    healthCheckResults: [],
    ...over,
  };
}

const alive = (firstSuccessOffset: number): HealthResult => ({ alive: true, firstSuccess: iso(firstSuccessOffset) });
const failing: HealthResult = { alive: false, firstSuccess: iso(1000) };

const plain: PublicationSettings = { publishDelayMs: 0, warmupMs: 0, warmupAggression: 1, weight: 100, hasHealthChecks: false };
const checked: PublicationSettings = { ...plain, hasHealthChecks: true };

describe('judgeTask', () => {
  it.each([
    ['TASK_STAGING', 'starting'],
    ['TASK_STARTING', 'starting'],
    ['TASK_KILLING', 'draining'],
  ])('a %s task is %s and gets no traffic', (state, expected) => {
    const verdict = judgeTask(task({ state }), plain, undefined, T0 + 60_000);
    expect(verdict.state).toBe(expected);
    expect(verdict.weight).toBe(0);
  });

  it('takes a drained task out of the upstream whatever its health, and says who drained it', () => {
    const verdict = judgeTask(task({ healthCheckResults: [alive(5000)] }), checked, undefined, T0 + 60_000, 'kill by ops@node-1');
    expect(verdict).toMatchObject({ state: 'draining', weight: 0, reason: 'draining: kill by ops@node-1' });
    expect(judgeTask(task({ state: 'TASK_STAGING' }), plain, undefined, T0, 'kill by ops').state).toBe('draining');
  });

  it('publishes a running task without delay or health checks at once', () => {
    expect(judgeTask(task(), plain, undefined, T0)).toMatchObject({ state: 'published', weight: 100, publishedAt: T0 });
  });

  it('waits for the publish delay, counted from Marathon\'s startedAt', () => {
    const settings = { ...plain, publishDelayMs: 30_000 };
    expect(judgeTask(task(), settings, undefined, T0 + 18_000)).toMatchObject({ state: 'waiting', reason: 'waiting 12 s of publish delay', weight: 0, changesAt: T0 + 30_000 });
    expect(judgeTask(task(), settings, undefined, T0 + 30_000)).toMatchObject({ state: 'published', publishedAt: T0 + 30_000 });
  });

  it('waits for the first health result, then publishes at max(delay end, firstSuccess)', () => {
    const settings = { ...checked, publishDelayMs: 10_000 };
    expect(judgeTask(task(), settings, undefined, T0 + 60_000)).toMatchObject({ state: 'waiting', reason: 'waiting for the first health check' });
    const healthyLate = task({ healthCheckResults: [alive(20_000)] });
    expect(judgeTask(healthyLate, settings, undefined, T0 + 60_000)).toMatchObject({ state: 'published', publishedAt: T0 + 20_000 });
    const healthyEarly = task({ healthCheckResults: [alive(2_000)] });
    expect(judgeTask(healthyEarly, settings, undefined, T0 + 5_000)).toMatchObject({ state: 'waiting', changesAt: T0 + 10_000 });
  });

  it('needs every health check alive', () => {
    const verdict = judgeTask(task({ healthCheckResults: [alive(1000), failing] }), checked, undefined, T0 + 60_000);
    expect(verdict).toMatchObject({ state: 'unhealthy', weight: 0, observation: { healthy: false, since: null } });
  });

  it('keeps a task published on remembered health when Marathon reports none (leader failover)', () => {
    const remembered: RememberedHealth = { healthy: true, since: iso(1000) };
    const verdict = judgeTask(task(), checked, remembered, T0 + 60_000);
    expect(verdict).toMatchObject({ state: 'published', weight: 100, publishedAt: T0 + 1000, observation: null });
    expect(verdict.reason).toContain('remembered');
  });

  it('lets an explicit failed result win over remembered health', () => {
    const verdict = judgeTask(task({ healthCheckResults: [failing] }), checked, { healthy: true, since: iso(1000) }, T0 + 60_000);
    expect(verdict.state).toBe('unhealthy');
  });

  it('keeps the earliest healthy-since across a failover, so warm-up does not restart', () => {
    const settings = { ...checked, warmupMs: 60_000 };
    const afterFailover = task({ healthCheckResults: [alive(50_000)] }); // the new leader's checker
    const verdict = judgeTask(afterFailover, settings, { healthy: true, since: iso(1000) }, T0 + 120_000);
    expect(verdict).toMatchObject({ state: 'published', publishedAt: T0 + 1000, observation: { healthy: true, since: iso(1000) } });
  });

  it('remembers what Marathon reports', () => {
    expect(judgeTask(task({ healthCheckResults: [alive(3000)] }), checked, undefined, T0 + 60_000).observation).toEqual({ healthy: true, since: iso(3000) });
    expect(judgeTask(task(), checked, undefined, T0 + 60_000).observation).toBeNull();
  });

  it('ramps the weight over the warm-up window, then holds it', () => {
    const settings = { ...plain, warmupMs: 100_000 };
    expect(judgeTask(task(), settings, undefined, T0 + 25_000)).toMatchObject({ state: 'warming', weight: 25, reason: 'warming: 25% of 100 s', changesAt: T0 + 100_000 });
    expect(judgeTask(task(), settings, undefined, T0 + 100_000)).toMatchObject({ state: 'published', weight: 100 });
  });
});

describe('warmupWeight', () => {
  it.each([
    [100, 0, 1, 1],
    [100, 0.5, 1, 50],
    [100, 0.25, 2, 50],
    [100, 1, 1, 100],
    [1000, 0.001, 1, 10],
    [5, 0.01, 1, 1],
  ])('weight %i at progress %f with aggression %f is %i', (weight, progress, aggression, expected) => {
    expect(warmupWeight(weight, progress, aggression)).toBe(expected);
  });
});
