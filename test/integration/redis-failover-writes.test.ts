// Writes a failover could lose are not taken for done. A drain ack refused
// by a master demoted to replica (READONLY) is an error, so the drain
// watcher writes it again instead of believing it written; a policy write
// the master took but no replica confirmed makes `edgeroute policy` fail
// with the reason.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DrainBoard, type DrainAck, type DrainMark } from '../../agent/fleet/redis-drains.js';
import { RedisLink } from '../../agent/fleet/redis-link.js';
import { subscribeRedis } from '../../agent/fleet/redis-subscriber.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { captureLog } from '../helpers/log-capture.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');

let master: RedisServer;
let replica: RedisServer;
let onMaster: Redis;
let onReplica: Redis;

beforeAll(async () => {
  master = await startRedis();
  replica = await startRedis({ replicaOf: master.port });
  onMaster = new Redis(master.url);
  onReplica = new Redis(replica.url);
  await waitFor('the replica in sync', async () => (/master_link_status:up/.test(await onReplica.info('replication')) ? true : undefined));
}, 30_000);

afterAll(async () => {
  if (replica) process.kill(replica.pid, 'SIGCONT');
  onMaster?.disconnect();
  onReplica?.disconnect();
  await replica?.stop();
  await master?.stop();
});

describe('writes during a failover', () => {
  it('a drain ack refused by a demoted master is an error, so it is written again', async () => {
    const at = Date.now();
    const mark: DrainMark = { taskId: 'web.1', appId: '/web', operation: 'kill', by: 'test', at, expiresAt: at + 60_000 };
    const ack: DrainAck = { at: Date.now(), tableVersion: 'v1', inflight: 0, settled: true };
    await new DrainBoard(onMaster, 'edgeroute:').mark([mark]);
    await waitFor('the mark on the replica', async () => ((await new DrainBoard(onReplica, 'edgeroute:').active()).has('web.1') ? true : undefined));
    // The agent's own client (RedisLink), connected to what is now a replica.
    const link = new RedisLink({ kind: 'url', url: replica.url, caFile: null }, captureLog().log);
    link.connect();
    expect(await link.whenReady(5_000)).toBe(true);
    try {
      const stale = new DrainBoard(link.client, 'edgeroute:');
      await expect(stale.ack('edge-a', new Map([['web.1', ack]]), new Map([['web.1', mark]]))).rejects.toThrow(/READONLY|writeable/);
    } finally {
      await link.close();
    }
    // Sent again to the master, it is recorded.
    const board = new DrainBoard(onMaster, 'edgeroute:');
    await board.ack('edge-a', new Map([['web.1', ack]]), new Map([['web.1', mark]]));
    expect((await board.acks(['web.1'])).get('web.1')?.acks.get('edge-a')).toEqual(ack);
  });

  it('a Redis client that ioredis ended is connected again, until the agent closes it', async () => {
    // ioredis's failover detector ends a Sentinel client whose reconnect is under way when the
    // sentinels announce the new master; an end is an end, whatever caused it: here a disconnect.
    const logs = captureLog();
    const link = new RedisLink({ kind: 'url', url: master.url, caFile: null }, logs.log);
    link.connect();
    expect(await link.whenReady(5_000)).toBe(true);
    link.client.disconnect();
    await waitFor('the client ended', () => (link.client.status === 'end' ? true : undefined), 5_000, 10);
    expect(await link.whenReady(5_000)).toBe(true);
    expect(logs.has((l) => l.msg === 'redis client ended (ioredis gave up); connecting again')).toBe(true);
    await link.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(link.client.status).toBe('end');
  });

  it('a subscriber that ioredis ended is started again and subscribed again, until it is disconnected', async () => {
    // No retries: the first lost connection ends the client, as ioredis's failover detector can.
    const parent = new Redis(master.url, { retryStrategy: () => null });
    const publisher = new Redis(master.url);
    const got: string[] = [];
    const subscription = subscribeRedis(parent, ['edge-sub-test'], (_channel, message) => got.push(message));
    try {
      const delivered = async (message: string) => {
        await waitFor(`${message} delivered`, async () => ((await publisher.publish('edge-sub-test', message)) > 0 && got.includes(message) ? true : undefined), 10_000, 50);
      };
      await delivered('before');
      expect(Number(await publisher.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      await delivered('after');
      subscription.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await publisher.publish('edge-sub-test', 'stopped')).toBe(0);
    } finally {
      subscription.disconnect();
      parent.disconnect();
      publisher.disconnect();
    }
  });

  it('a policy write no replica confirmed fails with the reason; confirmed, it succeeds', async () => {
    const policy = JSON.stringify({ default: 'v1', rules: [] });
    const set = () => execa(process.execPath, [BIN, 'policy', 'set', 'shop', '-', '--redis', master.url], { reject: false, input: policy, timeout: 90_000 });
    // The bin rebuilds dist/ when a source is newer: done now, not while the replica is stopped.
    await execa(process.execPath, [BIN, '--version'], { reject: false, timeout: 90_000 });
    // A replica that stopped answering but is still connected: the master takes the write, nobody confirms it.
    process.kill(replica.pid, 'SIGSTOP');
    try {
      const unconfirmed = await set();
      expect(unconfirmed.exitCode).toBe(1);
      expect(unconfirmed.stderr).toMatch(/stored the policy of shop on the Redis master, but none of its 1 replica\(s\) confirmed it within 2 s: a failover now would lose it/);
      expect(unconfirmed.stdout).toBe('');
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    const confirmed = await set();
    expect(confirmed.stderr).toBe('');
    expect(confirmed.exitCode).toBe(0);
    expect(await onReplica.get('edgeroute:policy:shop')).toBe(policy);
  }, 200_000);
});
