// Grey release: policies written to Redis (by hand or by the CLI) split each
// request of a multi-version app by cookie, header, argument, device, IP,
// region or a sticky percentage. The body runs on the data-plane rigs listed
// in GREY_RELEASE_RIGS: nginx for now. HAProxy nodes split too (their agent
// reads the policies; haproxy-l7.test.ts, cross-node-split.test.ts), but this
// body also checks what only nginx has (X-Edgeroute-Version sent to clients,
// region rules, the plugin's admin status and error log, an IPv6 listener):
// running it there needs those assertions as rig.differs first.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bucketOf } from '../../agent/policy/bucket.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startLoad } from '../helpers/load.js';
import { NGINX_RIG, startRigNode, type DataPlaneRig, type RigNode } from '../helpers/data-plane-rig.js';
import { waitForBackends } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const GREY_RELEASE_RIGS: readonly DataPlaneRig[] = [NGINX_RIG];

describe.each(GREY_RELEASE_RIGS)('grey release ($kind)', (rig) => {
  let redisServer: RedisServer;
  let redis: Redis;
  let marathon: MarathonSim;
  let node: RigNode;
  let stableIds: string[];
  let greyIds: string[];

  const shop = (version: string, instances: number) => ({
    id: `/shop-${version}`,
    instances,
    labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
  });

  /** Which version answered: by task id, and by the response header. */
  async function versionFor(headers: Record<string, string> = {}, path = '/', url = node.publicUrl): Promise<string> {
    const reply = await httpGet(`${url}${path}`, { host: 'shop.test', headers });
    expect(reply.status).toBe(200);
    const byTask = stableIds.includes(reply.body) ? 'stable' : greyIds.includes(reply.body) ? 'grey' : `unknown:${reply.body}`;
    expect(reply.headers['x-edgeroute-version']).toBe(byTask);
    return byTask;
  }

  /** Sets a policy the way an operator does with redis-cli (no PUBLISH), and waits until requests follow it. */
  async function setPolicy(policy: unknown, probe: { headers?: Record<string, string>; path?: string; expect: string }): Promise<void> {
    await redis.set('edgeroute:policy:shop', JSON.stringify(policy));
    await waitFor(`the policy to route to ${probe.expect}`, async () => ((await versionFor(probe.headers, probe.path)) === probe.expect ? true : undefined), 3_000);
  }

  beforeAll(async () => {
    redisServer = await startRedis();
    redis = new Redis(redisServer.url);
    marathon = await MarathonSim.start();
    node = await startRigNode(rig, marathon.url, { redis: redisServer.url }, { policyRedis: redisServer.url, regionVar: 'http_x_region', versionResponseHeader: true, ipv6: true });
    stableIds = (await marathon.deploy(shop('stable', 2))).map((t) => t.id);
    greyIds = (await marathon.deploy(shop('grey', 1))).map((t) => t.id);
    await marathon.deploy({ id: '/solo', instances: 1, labels: { 'edgeroute.vhosts': 'solo.test' } });
    await waitForBackends(node.publicUrl, 'shop.test', stableIds);
  });

  afterAll(async () => {
    redis?.disconnect();
    await node?.stop();
    await marathon?.stop();
    await redisServer?.stop();
  });

  beforeEach(async () => {
    await redis.del('edgeroute:policy:shop', 'edgeroute:regions');
    await waitFor('no policy in force', async () => ((await versionFor({ cookie: 'grey=1' })) === 'stable' ? true : undefined), 3_000);
  });

  describe('versions without a policy', () => {
    it('sends every request of a multi-version app to stable', async () => {
      for (let i = 0; i < 10; i++) expect(await versionFor({ 'x-canary': 'always' })).toBe('stable');
    });
  });

  describe('matchers', () => {
    it('cookie: exact values, or a regex', async () => {
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
      expect(await versionFor({ cookie: 'other=1; grey=1' })).toBe('grey');
      expect(await versionFor({ cookie: 'grey=2' })).toBe('stable');
      expect(await versionFor()).toBe('stable');
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', pattern: '^beta-\\d+$' } }, version: 'grey' }] }, { headers: { cookie: 'grey=beta-7' }, expect: 'grey' });
      expect(await versionFor({ cookie: 'grey=beta-x' })).toBe('stable');
    });

    it('header and arg', async () => {
      await setPolicy({ rules: [{ match: { header: { name: 'X-Canary', values: ['always'] } }, version: 'grey' }] }, { headers: { 'x-canary': 'always' }, expect: 'grey' });
      expect(await versionFor({ 'x-canary': 'never' })).toBe('stable');
      await setPolicy({ rules: [{ match: { arg: { name: 'ab', values: ['b'] } }, version: 'grey' }] }, { path: '/?ab=b', expect: 'grey' });
      expect(await versionFor({}, '/?ab=a')).toBe('stable');
    });

    it('device: User-Agent or a named header, with PCRE', async () => {
      await setPolicy({ rules: [{ match: { device: { patterns: ['iPhone OS 1[78]_'] } }, version: 'grey' }] }, { headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X)' }, expect: 'grey' });
      expect(await versionFor({ 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X)' })).toBe('stable');
      await setPolicy({ rules: [{ match: { device: { header: 'X-Device-Model', patterns: ['^MI \\d'] } }, version: 'grey' }] }, { headers: { 'x-device-model': 'MI 9' }, expect: 'grey' });
      expect(await versionFor({ 'x-device-model': 'MIX' })).toBe('stable');
    });

    it('ip: IPv4 and IPv6 CIDRs on the client address', async () => {
      await setPolicy({ rules: [{ match: { ip: ['10.0.0.0/8', '127.0.0.0/8'] }, version: 'grey' }] }, { expect: 'grey' });
      const v6url = node.publicUrl.replace('127.0.0.1', '[::1]');
      expect(await versionFor({}, '/', v6url)).toBe('stable');
      await setPolicy({ rules: [{ match: { ip: ['2001:db8::/32', '::1/128'] }, version: 'grey' }] }, { expect: 'stable' });
      expect(await versionFor({}, '/', v6url)).toBe('grey');
    });

    it('region: from the configured variable (a CDN header), else the CIDR table in Redis', async () => {
      await setPolicy({ rules: [{ match: { region: ['beijing', 'tianjin'] }, version: 'grey' }] }, { headers: { 'x-region': 'beijing' }, expect: 'grey' });
      expect(await versionFor({ 'x-region': 'shanghai' })).toBe('stable');
      expect(await versionFor()).toBe('stable');
      await redis.hset('edgeroute:regions', '127.0.0.0/8', 'tianjin', '10.0.0.0/8', 'hebei');
      await waitFor('the region table to load', async () => ((await versionFor()) === 'grey' ? true : undefined), 3_000);
      expect(await versionFor({ 'x-region': 'shanghai' })).toBe('stable');
    });

    it('several matchers in one rule must all hold; rules are tried in order', async () => {
      await setPolicy(
        {
          default: 'stable',
          rules: [
            { match: { header: { name: 'X-Canary', values: ['off'] } }, version: 'stable' },
            { match: { header: { name: 'X-Canary', pattern: '.' }, arg: { name: 'ab', values: ['b'] } }, version: 'grey' },
          ],
        },
        { headers: { 'x-canary': 'on' }, path: '/?ab=b', expect: 'grey' },
      );
      expect(await versionFor({ 'x-canary': 'off' }, '/?ab=b')).toBe('stable');
      expect(await versionFor({ 'x-canary': 'on' })).toBe('stable');
    });

    it('falls back to the default when a rule names a version the app lacks, and to stable without a default', async () => {
      await setPolicy({ default: 'grey', rules: [{ match: { header: { name: 'X-Canary', values: ['x'] } }, version: 'blue' }] }, { headers: { 'x-canary': 'x' }, expect: 'grey' });
      expect(await versionFor()).toBe('grey');
      await setPolicy({ default: 'green', rules: [] }, { expect: 'stable' });
    });
  });

  describe('sticky percentage', () => {
    const policy = { seed: 'spring-sale', rules: [{ match: { percentage: { value: 30, by: 'cookie:uid' } }, version: 'grey' }] };

    it('puts each user where hash(seed, app, uid) says, on every worker and on a second routing node', async () => {
      await setPolicy(policy, { headers: { cookie: `uid=${userIn(policy.seed, true)}` }, expect: 'grey' });
      const second = await startRigNode(rig, marathon.url, { redis: redisServer.url }, { policyRedis: redisServer.url, versionResponseHeader: true });
      try {
        await waitFor('the second node to load the policy', async () => ((await versionFor({ cookie: `uid=${userIn(policy.seed, true)}` }, '/', second.publicUrl)) === 'grey' ? true : undefined), 5_000);
        let grey = 0;
        for (let i = 0; i < 300; i++) {
          const uid = `user-${i}`;
          const expected = bucketOf(policy.seed, 'shop', uid) < 3000 ? 'grey' : 'stable';
          expect(await versionFor({ cookie: `uid=${uid}` })).toBe(expected);
          expect(await versionFor({ cookie: `uid=${uid}` })).toBe(expected);
          expect(await versionFor({ cookie: `uid=${uid}` }, '/', second.publicUrl)).toBe(expected);
          if (expected === 'grey') grey++;
        }
        expect(grey).toBeGreaterThan(60);
        // Requests without the key skip the rule.
        expect(await versionFor()).toBe('stable');
      } finally {
        await second.stop();
      }
    });

    it('is within one point of the percentage over 100,000 synthetic users, through nginx', async () => {
      await setPolicy({ ...policy, rules: [{ ...policy.rules[0]!, match: { percentage: { value: 12.5, by: 'header:X-User' } } }] }, { headers: { 'x-user': userIn(policy.seed, true, 1250) }, expect: 'grey' });
      const { Agent } = await import('node:http');
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      let grey = 0;
      let next = 0;
      const worker = async () => {
        while (next < 100_000) {
          const id = next++;
          const reply = await httpGet(`${node.publicUrl}/`, { host: 'shop.test', headers: { 'x-user': `synthetic-${id}` }, agent });
          if (reply.headers['x-edgeroute-version'] === 'grey') grey++;
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      agent.destroy();
      console.log(`percentage 12.5 over 100,000 users: ${(grey / 1000).toFixed(2)}%`);
      expect(Math.abs(grey / 1000 - 12.5)).toBeLessThan(1);
    });

    it('only adds users when the percentage is raised', async () => {
      const users = Array.from({ length: 200 }, (_, i) => `raise-${i}`);
      await setPolicy(policy, { headers: { cookie: `uid=${userIn(policy.seed, true)}` }, expect: 'grey' });
      const before = new Map<string, string>();
      for (const uid of users) before.set(uid, await versionFor({ cookie: `uid=${uid}` }));
      const raised = { ...policy, rules: [{ ...policy.rules[0]!, match: { percentage: { value: 60, by: 'cookie:uid' } } }] };
      await setPolicy(raised, { headers: { cookie: `uid=${userIn(policy.seed, true, 6000, 3000)}` }, expect: 'grey' });
      let added = 0;
      for (const uid of users) {
        const after = await versionFor({ cookie: `uid=${uid}` });
        if (before.get(uid) === 'grey') expect(after).toBe('grey');
        else if (after === 'grey') added++;
      }
      expect(added).toBeGreaterThan(20);
    });
  });

  describe('operations on policies', () => {
    it('takes a plain redis-cli SET within a second, and a PUBLISH hint faster', async () => {
      const started = Date.now();
      await setPolicy({ rules: [{ match: { header: { name: 'X-Canary', values: ['a'] } }, version: 'grey' }] }, { headers: { 'x-canary': 'a' }, expect: 'grey' });
      const plain = Date.now() - started;
      await redis.set('edgeroute:policy:shop', JSON.stringify({ rules: [{ match: { header: { name: 'X-Canary', values: ['b'] } }, version: 'grey' }] }));
      const hinted = Date.now();
      await redis.publish('edgeroute:policy-changed', 'shop');
      await waitFor('the hinted policy', async () => ((await versionFor({ 'x-canary': 'b' })) === 'grey' ? true : undefined), 3_000);
      console.log(`policy took effect after ${plain} ms (plain SET), ${Date.now() - hinted} ms (with PUBLISH)`);
      expect(plain).toBeLessThan(1_500);
    });

    it('keeps the last good policy when an invalid one is typed by hand, logs it once, and shows it in status', async () => {
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
      const bad = '{"rules": [{"match": {"ip": ["10.0.0/8"]}, "version": "grey"}]}';
      await redis.set('edgeroute:policy:shop', bad);
      const status = await waitFor('status to show the error', async () => {
        const res = await fetch(`${nginxAdmin().adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginxAdmin().adminToken}` } });
        const body = (await res.json()) as { policies: Record<string, { loaded: boolean; error: string | null }> };
        return body.policies.shop?.error ? body.policies.shop : undefined;
      });
      expect(status).toEqual({ loaded: true, error: '/rules/0/match/ip/0: "10.0.0/8" is not an IPv4 or IPv6 CIDR' });
      await new Promise((r) => setTimeout(r, 1_200)); // several refresh rounds
      expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
      const refusals = node.dataPlane.log().split('\n').filter((l) => l.includes('split policy of app shop refused') && l.includes('10.0.0/8'));
      expect(refusals).toHaveLength(1);

      await redis.set('edgeroute:policy:shop', '{"rules": [');
      await waitFor('the JSON error', () => (node.dataPlane.log().includes('not valid JSON') ? true : undefined));
      expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
    });

    // Found by fuzzing the plugin against the CLI: cjson took these, JSON.parse does not.
    it('refuses what the CLI refuses as JSON, and logs refused values on one line', async () => {
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
      const refused = async (text: string): Promise<string> => {
        const before = refusals().length;
        await redis.set('edgeroute:policy:shop', text);
        await redis.publish('edgeroute:policy-changed', 'shop');
        return waitFor(`the refusal of ${text}`, () => refusals()[before]);
      };
      expect(await refused('{"rules":[{"match":{"percentage":{"value":NaN,"by":"ip"}},"version":"grey"}]}')).toContain('/: not valid JSON');
      expect(await refused('{"rules":[{"match":{"percentage":{"value":0x10,"by":"ip"}},"version":"grey"}]}')).toContain('/: not valid JSON');
      expect(await refused('{"seed":"a\tb"}')).toContain('/: not valid JSON: control character in a string');
      expect(await refused('{"rules": {}}')).toContain('/rules: must be an array');
      expect(await refused('[]')).toContain('/: must be a JSON object');
      expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
      const forged = await refused('{"rules":[{"match":{"ip":["10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged"]},"version":"grey"}]}');
      expect(forged).toContain('"10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged" is not an IPv4 or IPv6 CIDR');
      expect(node.dataPlane.log()).not.toMatch(/^2026\/01\/01 00:00:00 \[emerg\] forged/m);
    });

    it('sends everything to the default version once the policy is removed', async () => {
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
      await redis.del('edgeroute:policy:shop');
      await waitFor('the default', async () => ((await versionFor({ cookie: 'grey=1' })) === 'stable' ? true : undefined), 3_000);
    });

    it('never evaluates a policy for a single-version app', async () => {
      await redis.set('edgeroute:policy:/solo', '{"rules": "not even valid"}');
      await new Promise((r) => setTimeout(r, 1_200));
      const res = await fetch(`${nginxAdmin().adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginxAdmin().adminToken}` } });
      const body = (await res.json()) as { policies: Record<string, unknown> };
      expect(Object.keys(body.policies)).toEqual(['shop']);
      expect(node.dataPlane.log()).not.toContain('/solo refused');
      expect((await httpGet(`${node.publicUrl}/`, { host: 'solo.test' })).status).toBe(200);
    });

    it('edgeroute policy set checks, stores and publishes; get, list and rm work; bad policies exit 3', async () => {
      const env = { EDGEROUTE_REDIS: redisServer.url };
      const file = JSON.stringify({ rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: ['cli'] } }, version: 'grey' }] });
      let run = await execa(process.execPath, [BIN, 'policy', 'set', 'shop', '-'], { input: file, env, reject: false });
      expect(run.stdout).toContain('published on edgeroute:policy-changed');
      expect(run.exitCode).toBe(0);
      await waitFor('the CLI policy', async () => ((await versionFor({ cookie: 'grey=cli' })) === 'grey' ? true : undefined), 3_000);

      run = await execa(process.execPath, [BIN, 'policy', 'list'], { env, reject: false });
      expect(run.stdout.split('\n')).toContain('shop');
      run = await execa(process.execPath, [BIN, 'policy', 'get', 'shop'], { env, reject: false });
      expect(JSON.parse(run.stdout)).toEqual(JSON.parse(file));

      run = await execa(process.execPath, [BIN, 'policy', 'set', 'shop', '-'], { input: '{"rules":[{"match":{"percentage":{"value":5,"by":"session"}},"version":"grey"}]}', env, reject: false });
      expect(run.exitCode).toBe(3);
      expect(run.stderr).toContain('/rules/0/match/percentage/by');
      expect(await versionFor({ cookie: 'grey=cli' })).toBe('grey');

      run = await execa(process.execPath, [BIN, 'policy', 'rm', 'shop'], { env, reject: false });
      expect(run.exitCode).toBe(0);
      run = await execa(process.execPath, [BIN, 'policy', 'get', 'shop'], { env, reject: false });
      expect(run.exitCode).toBe(4);
      run = await execa(process.execPath, [BIN, 'policy', 'list'], { env: { EDGEROUTE_REDIS: 'redis://127.0.0.1:1' }, reject: false });
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toContain('cannot reach Redis');
    });
  });

  describe('Redis away', () => {
    it('keeps splitting on the last good policy while Redis is down, losing no request', async () => {
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
      const testers = startLoad(node.publicUrl, 'shop.test', { headers: { cookie: 'grey=1' } });
      const others = startLoad(node.publicUrl, 'shop.test');
      const port = redisServer.port;
      redis.disconnect();
      await redisServer.stop();
      await waitFor('the plugin to notice', () => (node.dataPlane.log().includes('splitting goes on with the last good policies') ? true : undefined), 5_000);
      await new Promise((r) => setTimeout(r, 1_000));
      const [t, o] = await Promise.all([testers.stop(), others.stop()]);
      console.log(`redis down: ${t.sent + o.sent} requests, ${t.failed + o.failed} failed`);
      expect([...t.failures, ...o.failures]).toEqual([]);
      expect([...t.byBackend.keys()].sort()).toEqual(greyIds);
      expect([...o.byBackend.keys()].sort()).toEqual([...stableIds].sort());

      // Redis returns (empty: this one keeps no data); the refresh resumes.
      redisServer = await startRedis({ port });
      redis = new Redis(redisServer.url);
      await waitFor('the plugin to reconnect', () => (node.dataPlane.log().includes('redis reachable again') ? true : undefined), 5_000);
      await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['2'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=2' }, expect: 'grey' });
    });

    it('sends traffic to the default version when no policy was ever loaded', async () => {
      const deadRedis = 'redis://127.0.0.1:1';
      const lonely = await startRigNode(rig, marathon.url, {}, { policyRedis: deadRedis, versionResponseHeader: true });
      try {
        await waitFor('routing', async () => ((await httpGet(`${lonely.publicUrl}/`, { host: 'shop.test' })).status === 200 ? true : undefined));
        for (let i = 0; i < 10; i++) expect(await versionFor({ cookie: 'grey=1' }, '/', lonely.publicUrl)).toBe('stable');
      } finally {
        await lonely.stop();
      }
    });
  });

  /** The plugin's admin listener (nginx only). */
  function nginxAdmin(): { adminUrl: string; adminToken: string } {
    const nginx = node.dataPlane.nginx;
    if (!nginx) throw new Error(`${rig.kind} has no plugin admin listener`);
    return nginx;
  }

  /** The "refused" lines of the shop's policy in nginx's error log. */
  function refusals(): string[] {
    return node.dataPlane.log().split('\n').filter((l) => l.includes('split policy of app shop refused'));
  }

  /** A uid whose bucket is inside (or outside) [from, to): for probes that must route one way. */
  function userIn(seed: string, inside: boolean, to = 3000, from = 0): string {
    for (let i = 0; ; i++) {
      const bucket = bucketOf(seed, 'shop', `probe-${i}`);
      if ((bucket >= from && bucket < to) === inside) return `probe-${i}`;
    }
  }
});
