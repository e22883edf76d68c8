/**
 * Data-plane overhead: requests/s and p99 through (a) plain nginx proxy_pass
 * to a static upstream, (b) edgeroute with a one-version app, (c) edgeroute
 * with a two-version app under a 10-rule policy; same backends, alternated
 * a-b-c over several rounds so drift hits all three alike; (p) is b with L7
 * routing in use: the app shares its host with two others by path prefix,
 * the request matches a non-root prefix, and the route carries settings
 * (timeouts, an allow-list that lets the client in); (floor) is the plain
 * proxy with a no-op Lua handler in each per-request phase the plugin has.
 */
import { Redis } from 'ioredis';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { atLeast, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startLuaFloor, startNativeRules, startPlainProxy, startStaticBackends } from './lib/nginx-fixtures.js';
import { cpuMs } from './lib/proc.js';
import { pushTable } from './lib/push.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

/** Ten rules that all miss for the benchmark's requests but the last: every matcher kind is evaluated. */
export const TEN_RULE_POLICY = {
  default: 'stable',
  seed: 'bench',
  rules: [
    { name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' },
    { name: 'staff', match: { ip: ['10.0.0.0/8', '172.16.0.0/12', '2001:db8::/32'] }, version: 'grey' },
    { name: 'xiaomi', match: { device: { header: 'X-Device-Model', patterns: ['^MI \\d'] } }, version: 'grey' },
    { name: 'iphone', match: { device: { patterns: ['iPhone OS 1[78]_'] } }, version: 'grey' },
    { name: 'north', match: { region: ['beijing', 'tianjin'] }, version: 'grey' },
    { name: 'beta-arg', match: { arg: { name: 'ab', values: ['b'] } }, version: 'grey' },
    { name: 'canary', match: { header: { name: 'X-Canary', values: ['always'] } }, version: 'grey' },
    { name: 'android', match: { device: { pattern: 'Android 1[45]' } }, version: 'grey' },
    { name: 'beta-cookie', match: { cookie: { name: 'beta', pattern: '^yes' } }, version: 'grey' },
    { name: '5pct', match: { percentage: { value: 5, by: 'cookie:uid' } }, version: 'grey' },
  ],
};

/** b/a in BENCHMARKS.md when issue 13 (L7 routing) was filed (2788b9d, 2026-11-22): the figure p/a must stay within 2 % of. */
export const B_A_WHEN_L7_FILED = 0.839;

/** The (p) variant's host: three apps by path prefix; the measured one is /api, with settings. */
export const SHARED_HOST = 'shared.bench';
export const P_SETTINGS = { connectTimeout: 5, readTimeout: 30, sendTimeout: 30, allowFrom: ['10.0.0.0/8', '127.0.0.0/8'] };
export const P_PATH = '/api/v1/items';

const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', cookie: 'uid=bench-user-1; session=abc' };

export const dataplane: Benchmark = {
  name: 'dataplane',
  description: 'plain proxy_pass vs edgeroute (one version) vs edgeroute (two versions, 10-rule policy) vs edgeroute (one version by path prefix, with settings)',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const rounds = ctx.smoke ? 1 : 9;
    const seconds = ctx.smoke ? 1 : 4;
    const connections = ctx.smoke ? 4 : 50;
    const backends = await startStaticBackends(4);
    const redis = await startRedis();
    const plain = await startPlainProxy(backends.ports.map((port) => ({ host: '127.0.0.1', port })));
    const edge = await startNginxNode({ workerProcesses: 1, redis: redis.url, policyRefreshSeconds: 0.2, errorLogLevel: 'warn' });
    const floor = await startLuaFloor(backends.ports[0] as number);
    const native = await startNativeRules(backends.ports);
    const client = new Redis(redis.url);
    try {
      await pushTable(edge.adminUrl, edge.adminToken, [
        { id: 'one', vhosts: ['one.bench'], versions: { stable: backends.ports } },
        { id: 'two', vhosts: ['two.bench'], versions: { stable: backends.ports, grey: backends.ports } },
        { id: 'shared-web', vhosts: [SHARED_HOST], versions: { stable: backends.ports } },
        { id: 'shared-api', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/api'] }, settings: P_SETTINGS, versions: { stable: backends.ports } },
        { id: 'shared-auth', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/auth'] }, settings: { readTimeout: 10, allowFrom: ['127.0.0.0/8'] }, versions: { stable: backends.ports } },
      ]);
      // The measured request is routed by its prefix to shared-api.
      await waitFor('the path routes', async () => {
        const reply = await httpGet(`${edge.publicUrl}${P_PATH}`, { host: SHARED_HOST });
        return reply.status === 200 ? true : undefined;
      });
      await client.set('edgeroute:policy:two', JSON.stringify(TEN_RULE_POLICY));
      await waitFor('the policy to load', async () => {
        const reply = await httpGet(`${edge.publicUrl}/`, { host: 'two.bench', headers: { cookie: 'grey=1' } });
        const status = await fetch(`${edge.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${edge.adminToken}` } });
        const body = (await status.json()) as { policies?: Record<string, { loaded: boolean }> };
        return reply.status === 200 && body.policies?.two?.loaded ? true : undefined;
      });

      // Every router gets the same request line, so only the routing differs.
      const targets = {
        a: { url: `${plain.url}${P_PATH}`, headers: { ...HEADERS, host: 'one.bench' } },
        b: { url: `${edge.publicUrl}${P_PATH}`, headers: { ...HEADERS, host: 'one.bench' } },
        c: { url: `${edge.publicUrl}${P_PATH}`, headers: { ...HEADERS, host: 'two.bench' } },
        floor: { url: `${floor.url}${P_PATH}`, headers: { ...HEADERS, host: 'one.bench' } },
        p: { url: `${edge.publicUrl}${P_PATH}`, headers: { ...HEADERS, host: SHARED_HOST } },
        n: { url: `${native.url}${P_PATH}`, headers: { ...HEADERS, host: 'two.bench' } },
      } as const;
      // b and p next to each other (their ratio has the 2 % target, so the least
      // drift between them), in turns b-p and p-b so neither always runs first.
      // c and n (the same ten rules in nginx's own configuration) next to each other too.
      const keys = ['a', 'b', 'p', 'c', 'n', 'floor'] as const;
      const orderOf = (round_: number) => (round_ % 2 === 1 ? keys : (['a', 'p', 'b', 'n', 'c', 'floor'] as const));
      const runs: Record<(typeof keys)[number], WrkResult[]> = { a: [], b: [], c: [], n: [], floor: [], p: [] };
      for (const key of keys) await runWrk({ ...targets[key], durationSeconds: 1, connections }); // warm-up
      // Each router's worker CPU per request: steadier than req/s on a shared
      // machine, since wrk and the backends compete for the same cores.
      const workersOf = { a: plain.process, b: edge.process, c: edge.process, n: native.process, floor: floor.process, p: edge.process } as const;
      const workerCpu = (key: (typeof keys)[number]) => workersOf[key].workerPids().reduce((sum, pid) => sum + cpuMs(pid), 0);
      const cpuUs: Record<(typeof keys)[number], number[]> = { a: [], b: [], c: [], n: [], floor: [], p: [] };
      for (let round_ = 1; round_ <= rounds; round_++) {
        for (const key of orderOf(round_)) {
          const cpuBefore = workerCpu(key);
          const result = await runWrk({ ...targets[key], durationSeconds: seconds, connections });
          // Failed requests are cheap: a run with any would flatter the router that fails.
          if (result.failed > 0) throw new Error(`${key}: ${result.failed} of ${result.requests} requests failed; the setup is broken`);
          runs[key].push(result);
          cpuUs[key].push(((workerCpu(key) - cpuBefore) * 1000) / result.requests);
          ctx.progress(`round ${round_}/${rounds} ${key}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latency.p99} ms, failed ${result.failed}`);
        }
      }
      type Key = (typeof keys)[number];
      const ratio = (key: Key, to: Key = 'a') => median(runs[key].map((r, i) => r.requestsPerSecond / (runs[to][i]?.requestsPerSecond ?? NaN)));
      // CPU per request of `key` over `to`'s, round by round: above 1 costs more.
      const cpuRatio = (key: Key, to: Key) => round(median(cpuUs[key].map((us, i) => us / (cpuUs[to][i] ?? NaN))));
      const summaryOf = (key: (typeof keys)[number]) => ({
        requestsPerSecond: round(median(runs[key].map((r) => r.requestsPerSecond)), 0),
        p99Ms: round(median(runs[key].map((r) => r.latency.p99))),
        failed: runs[key].reduce((sum, r) => sum + r.failed, 0),
        rounds: runs[key],
      });
      const results = {
        setup: { rounds, secondsPerRun: seconds, connections, wrkThreads: 2, proxyWorkers: 1, backends: 'nginx return 200, 4 ports, 1 worker', path: P_PATH, order: 'a b p c n floor, then a p b n c floor' },
        a_plain: summaryOf('a'),
        b_one_version: summaryOf('b'),
        c_two_versions_10_rules: summaryOf('c'),
        floor_lua_phases_doing_nothing: summaryOf('floor'),
        n_ten_rules_in_nginx_conf: { ...summaryOf('n'), config: 'bench/templates/native-rules.conf.hbs: the same ten rules as map, geo and split_clients, no Lua' },
        p_paths_and_settings: { ...summaryOf('p'), host: SHARED_HOST, path: P_PATH, apps: 'shared-web /, shared-api /api (measured), shared-auth /auth', settings: P_SETTINGS },
        ratio_b_a: round(ratio('b')),
        ratio_c_a: round(ratio('c')),
        ratio_floor_a: round(ratio('floor')),
        ratio_n_a: round(ratio('n')),
        ratio_c_n: round(ratio('c', 'n')),
        ratio_p_a: round(ratio('p')),
        ratio_p_b: round(ratio('p', 'b')),
        ratio_b_floor: round(ratio('b', 'floor')),
        workerCpuUsPerRequest: {
          a: round(median(cpuUs.a), 2),
          floor: round(median(cpuUs.floor), 2),
          b: round(median(cpuUs.b), 2),
          p: round(median(cpuUs.p), 2),
          c: round(median(cpuUs.c), 2),
          n: round(median(cpuUs.n), 2),
          cost_p_b: cpuRatio('p', 'b'),
          cost_b_floor: cpuRatio('b', 'floor'),
          cost_c_a: cpuRatio('c', 'a'),
          cost_floor_a: cpuRatio('floor', 'a'),
          cost_n_a: cpuRatio('n', 'a'),
          cost_c_n: cpuRatio('c', 'n'),
        },
      };
      const cpu = results.workerCpuUsPerRequest;
      return {
        summary: `b/a ${results.ratio_b_a}, c/a ${results.ratio_c_a} (median of ${rounds} rounds; no-op Lua phases alone: ${results.ratio_floor_a}); req/s a ${results.a_plain.requestsPerSecond}, b ${results.b_one_version.requestsPerSecond}, c ${results.c_two_versions_10_rules.requestsPerSecond}; p99 ms a ${results.a_plain.p99Ms}, b ${results.b_one_version.p99Ms}, c ${results.c_two_versions_10_rules.p99Ms}; paths and settings: p/b ${results.ratio_p_b} (p/a ${results.ratio_p_a}, req/s ${results.p_paths_and_settings.requestsPerSecond}, p99 ${results.p_paths_and_settings.p99Ms} ms); b/floor ${results.ratio_b_floor}; the ten rules in nginx.conf, no Lua: n/a ${results.ratio_n_a}, c/n ${results.ratio_c_n}; worker CPU per request µs a ${cpu.a}, floor ${cpu.floor}, b ${cpu.b}, p ${cpu.p}, c ${cpu.c}, n ${cpu.n} (p/b ${cpu.cost_p_b}, b/floor ${cpu.cost_b_floor}, c/a ${cpu.cost_c_a}, n/a ${cpu.cost_n_a})`,
        targets: [
          atLeast('b/a requests per second', results.ratio_b_a, 0.93),
          atLeast('c/a requests per second', results.ratio_c_a, 0.9),
          // Issue 13: "with paths and settings in use ... within 2 % of today's b/a", today being the day it was
          // filed, when BENCHMARKS.md's b/a was 0.839. p/b, what the L7 features cost against b now, is reported above.
          atLeast(`p/a requests per second (paths and settings in use, within 2% of issue 13's b/a of ${B_A_WHEN_L7_FILED})`, results.ratio_p_a, round(B_A_WHEN_L7_FILED * 0.98)),
          atLeast('b/floor requests per second (the plugin within 3% of no-op Lua phases)', results.ratio_b_floor, 0.97),
        ],
        results,
      };
    } finally {
      client.disconnect();
      await native.stop();
      await floor.stop();
      await edge.process.stop();
      await plain.stop();
      await redis.stop();
      await backends.stop();
    }
  },
};
