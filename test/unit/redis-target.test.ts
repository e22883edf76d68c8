import { describe, expect, it } from 'vitest';
import { describeTarget, describeTargetError, parseSentinels, redisTargetFromOptions } from '../../agent/fleet/redis-target.js';

describe('redis target from flags', () => {
  it('reads the sentinels and the master name', () => {
    const target = redisTargetFromOptions({ 'redis-sentinels': '10.0.0.7:26379, [::1]:26380', 'redis-master': 'edge', 'redis-password': 'pw' }, null);
    expect(target).toMatchObject({ kind: 'sentinel', master: 'edge', password: 'pw', tls: false, sentinels: [{ host: '10.0.0.7', port: 26379 }, { host: '::1', port: 26380 }] });
    expect(describeTarget(target!)).toBe('master edge via sentinels 10.0.0.7:26379,::1:26380');
  });

  it('falls back to --redis, or the default, or nothing', () => {
    expect(redisTargetFromOptions({ redis: 'redis://h:1' }, null)).toEqual({ kind: 'url', url: 'redis://h:1', caFile: null });
    expect(redisTargetFromOptions({}, 'redis://127.0.0.1:6379')).toEqual({ kind: 'url', url: 'redis://127.0.0.1:6379', caFile: null });
    expect(redisTargetFromOptions({}, null)).toBeNull();
  });

  it('refuses half a setting, two settings, and Sentinel-only flags with --redis', () => {
    expect(() => redisTargetFromOptions({ 'redis-master': 'edge' }, null)).toThrow(/--redis-master needs --redis-sentinels/);
    expect(() => redisTargetFromOptions({ 'redis-sentinels': 'h:1' }, null)).toThrow(/--redis-sentinels needs --redis-master/);
    expect(() => redisTargetFromOptions({ redis: 'redis://h:1', 'redis-sentinels': 'h:1', 'redis-master': 'm' }, null)).toThrow(/both name Redis/);
    expect(() => redisTargetFromOptions({ redis: 'redis://h:1', 'redis-password': 'x' }, null)).toThrow(/--redis-password is for --redis-sentinels/);
    expect(() => redisTargetFromOptions({ 'redis-sentinels': 'h:1', 'redis-master': 'm', 'redis-ca': '/ca.pem' }, null)).toThrow(/add --redis-tls/);
  });

  it('names a sentinel it cannot read', () => {
    expect(() => parseSentinels('h1:26379,h2')).toThrow(/"h2" is not HOST:PORT/);
    expect(() => parseSentinels('h:70000')).toThrow(/not HOST:PORT/);
    expect(() => parseSentinels(' , ')).toThrow(/at least one sentinel/);
  });

  it('never says a password', () => {
    const target = redisTargetFromOptions({ 'redis-sentinels': 'h:1', 'redis-master': 'm', 'redis-user': 'edge', 'redis-password': 'sekret' }, null)!;
    expect(describeTargetError(target, new Error('WRONGPASS invalid username-password pair sekret'))).toBe('redis refused the password for user edge: WRONGPASS invalid username-password pair ***');
  });
});
