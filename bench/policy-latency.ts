/**
 * Policy latency: from `SET <prefix>policy:<app>` returning to the first
 * request routed by the new policy, with and without the PUBLISH hint.
 */
import { Redis } from 'ioredis';
import { Agent } from 'node:http';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { percentile, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { pushTable } from './lib/push.js';

export const policyLatency: Benchmark = {
  name: 'policy',
  description: 'time from redis SET of a policy to the first request it routes, with and without PUBLISH',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const samples = ctx.smoke ? 3 : 50;
    const backends = await startStaticBackends(2);
    const redis = await startRedis();
    const nginx = await startNginxNode({ workerProcesses: 2, redis: redis.url, versionResponseHeader: true });
    const client = new Redis(redis.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const measure = async (i: number, publish: boolean): Promise<number> => {
      const value = `v${publish ? 'p' : 's'}${i}`;
      await client.set('edgeroute:policy:shop', JSON.stringify({ rules: [{ match: { header: { name: 'X-Probe', values: [value] } }, version: 'grey' }] }));
      const setAt = performance.now();
      if (publish) await client.publish('edgeroute:policy-changed', 'shop');
      await waitFor(
        'the new policy',
        async () => {
          const reply = await httpGet(`${nginx.publicUrl}/`, { host: 'shop.bench', headers: { 'x-probe': value }, agent });
          return reply.headers['x-edgeroute-version'] === 'grey' ? true : undefined;
        },
        5_000,
        0,
      );
      return performance.now() - setAt;
    };
    const plain: number[] = [];
    const hinted: number[] = [];
    try {
      await pushTable(nginx.adminUrl, nginx.adminToken, [{ id: 'shop', vhosts: ['shop.bench'], versions: { stable: [backends.ports[0]!], grey: [backends.ports[1]!] } }]);
      await waitFor('the table', async () => ((await httpGet(`${nginx.publicUrl}/`, { host: 'shop.bench' })).status === 200 ? true : undefined));
      for (let i = 0; i < samples; i++) {
        plain.push(await measure(i, false));
        hinted.push(await measure(i, true));
        // Start the next sample at a random point of the refresh interval.
        await new Promise((r) => setTimeout(r, Math.random() * 100));
        if ((i + 1) % 10 === 0) ctx.progress(`${i + 1}/${samples} samples of each`);
      }
    } finally {
      agent.destroy();
      client.disconnect();
      await nginx.process.stop();
      await redis.stop();
      await backends.stop();
    }
    const stats = (values: number[]) => ({ n: values.length, p50Ms: round(percentile(values, 50), 1), p99Ms: round(percentile(values, 99), 1), maxMs: round(Math.max(...values), 1) });
    const results = { setup: { samples, policyRefreshSeconds: 0.5, workers: 2 }, plainSet: stats(plain), setAndPublish: stats(hinted) };
    return {
      summary: `plain SET p50 ${results.plainSet.p50Ms} ms, p99 ${results.plainSet.p99Ms} ms; SET + PUBLISH p50 ${results.setAndPublish.p50Ms} ms, p99 ${results.setAndPublish.p99Ms} ms (${samples} samples each)`,
      targets: [],
      results,
    };
  },
};
