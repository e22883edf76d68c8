// Grey release: policies written to Redis (by hand or by the CLI) split each
// request of a multi-version app by cookie, header, argument, device, IP,
// region or a sticky percentage. One test body for both data planes:
// grey-release.test.ts runs it on an nginx node (the plugin reads Redis),
// grey-release-haproxy.test.ts on an HAProxy node (the agent reads Redis and
// hands the checked policies to HAProxy's Lua action), side by side.
//
// What the two do their own documented way comes from the rig: who reports a
// refused policy and Redis going away (rig.differs.policyReader: nginx's
// error log and /edgeroute/status, or the agent's log and the records HAProxy
// holds in rules.map). Both are started with X-Edgeroute-Version sent to
// clients too and a region header (a CDN's X-Region).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bucketOf } from '../../agent/policy/bucket.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { requestAsBrowsersDo, startLoad } from '../helpers/load.js';
import { startRigNode, type DataPlaneOptions, type DataPlaneRig, type RigNode } from '../helpers/data-plane-rig.js';
import { waitForBackends } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');

export function greyRelease(rig: DataPlaneRig): void {
  describe(`grey release (${rig.kind})`, () => {
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

    /** The version a task serves. */
    const versionOfTask = (taskId: string) => (stableIds.includes(taskId) ? 'stable' : greyIds.includes(taskId) ? 'grey' : `unknown:${taskId}`);

    /**
     * Which version answered: by task id, and by the X-Edgeroute-Version the
     * backend got (both data planes send it, the client's own value
     * removed) and, where the node sends it to clients too, the response's.
     * `path` is `/` with an optional query; it goes to the task's /headers,
     * which echoes the request headers it received.
     */
    async function versionFor(headers: Record<string, string> = {}, path = '/', url = node.publicUrl): Promise<string> {
      const reply = await httpGet(`${url}/headers${path.slice(1)}`, { host: 'shop.test', headers: { 'x-edgeroute-version': 'forged', ...headers } });
      expect(reply.status).toBe(200);
      const echo = JSON.parse(reply.body) as { taskId: string; headers: string[] };
      const byTask = versionOfTask(echo.taskId);
      const sent = echo.headers.flatMap((h, i) => (i % 2 === 0 && h.toLowerCase() === 'x-edgeroute-version' ? [echo.headers[i + 1]] : []));
      expect(sent).toEqual([byTask]);
      expect(reply.headers['x-edgeroute-version']).toBe(byTask);
      return byTask;
    }

    /** The data plane's options: the policies' Redis, and X-Edgeroute-Version to clients. */
    const planeOptions = (policyRedis: string): DataPlaneOptions => ({ policyRedis, versionResponseHeader: true });

    /** Sets a policy the way an operator does with redis-cli (no PUBLISH), and waits until requests follow it. */
    async function setPolicy(policy: unknown, probe: { headers?: Record<string, string>; path?: string; expect: string }): Promise<void> {
      await redis.set('edgeroute:policy:shop', JSON.stringify(policy));
      // Every worker (each loads policies on its own): several answers in a row, not one.
      await waitFor(`the policy to route to ${probe.expect}`, async () => {
        for (let i = 0; i < 8; i++) if ((await versionFor(probe.headers, probe.path)) !== probe.expect) return undefined;
        return true;
      }, 3_000);
    }

    beforeAll(async () => {
      redisServer = await startRedis();
      redis = new Redis(redisServer.url);
      marathon = await MarathonSim.start();
      node = await startRigNode(rig, marathon.url, { redis: redisServer.url }, { ...planeOptions(redisServer.url), ipv6: true, regionHeader: 'X-Region' });
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

    describe('the chosen version', () => {
      it('is told to clients too, in X-Edgeroute-Version (--version-header)', async () => {
        await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
        for (const [headers, version] of [[{ cookie: 'grey=1' }, 'grey'], [{}, 'stable']] as const) {
          const reply = await httpGet(`${node.publicUrl}/`, { host: 'shop.test', headers });
          expect(versionOfTask(reply.body)).toBe(version);
          expect(reply.headers['x-edgeroute-version']).toBe(version);
        }
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
        const second = await startRigNode(rig, marathon.url, { redis: redisServer.url }, planeOptions(redisServer.url));
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

      it('is within one point of the percentage over 100,000 synthetic users, through the node', async () => {
        await setPolicy({ ...policy, rules: [{ ...policy.rules[0]!, match: { percentage: { value: 12.5, by: 'header:X-User' } } }] }, { headers: { 'x-user': userIn(policy.seed, true, 1250) }, expect: 'grey' });
        const { Agent } = await import('node:http');
        const agent = new Agent({ keepAlive: true, maxSockets: 16 });
        const pidsBefore = await node.pids();
        let grey = 0;
        let next = 0;
        // As the load helper (and browsers) do: a request whose reused kept-alive connection closed
        // before any answer is sent again, once, on a new connection, and counted. HAProxy closes a
        // client's connection that way when the task closed its own under the request (README, Retries).
        const resent: string[] = [];
        const get = (id: number) =>
          requestAsBrowsersDo(`${node.publicUrl}/`, { host: 'shop.test', headers: { 'x-user': `synthetic-${id}` }, agent }, (err) => resent.push(`synthetic-${id} at ${new Date().toISOString()}: ${String(err)}`));
        const worker = async () => {
          while (next < 100_000) {
            const id = next++;
            const reply = await get(id);
            // The task that answered; where the node tells clients the version, it must say the same.
            const version = versionOfTask(reply.body);
            if (reply.headers['x-edgeroute-version'] !== version) throw new Error(`${reply.body} answered, the header says ${String(reply.headers['x-edgeroute-version'])}`);
            if (version === 'grey') grey++;
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        agent.destroy();
        console.log(`percentage 12.5 over 100,000 users: ${(grey / 1000).toFixed(2)}%; sent again after a kept-alive connection closed unanswered: ${resent.length}`);
        expect(Math.abs(grey / 1000 - 12.5)).toBeLessThan(1);
        // nginx sends such a GET to another task itself; HAProxy (without --retry-unanswered) leaves it to
        // the client, which must be rare: a task's idle close meeting a request. No worker died meanwhile.
        expect(resent.length, resent.join('\n')).toBeLessThanOrEqual(rig.differs.cutRequestClosesSilently ? 3 : 0);
        expect(await node.pids()).toEqual(pidsBefore);
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
        const good = { rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] };
        await setPolicy(good, { headers: { cookie: 'grey=1' }, expect: 'grey' });
        const bad = '{"rules": [{"match": {"ip": ["10.0.0/8"]}, "version": "grey"}]}';
        await redis.set('edgeroute:policy:shop', bad);
        const status = await waitFor('status to show the error', async () => {
          const shop = (await policyStatus()).shop;
          return shop?.error ? shop : undefined;
        });
        // Where the status tells the digest of the policy applied (nginx's /edgeroute/status), it is the good one's.
        const { digest, ...rest } = status as typeof status & { digest?: string };
        expect(rest).toEqual({ loaded: true, error: '/rules/0/match/ip/0: "10.0.0/8" is not an IPv4 or IPv6 CIDR' });
        if (digest !== undefined) expect(digest).toBe(createHash('md5').update(JSON.stringify(good)).digest('hex'));
        await new Promise((r) => setTimeout(r, 1_200)); // several refresh rounds
        expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
        expect(refusals().filter((l) => l.includes('10.0.0/8'))).toHaveLength(1);

        await redis.set('edgeroute:policy:shop', '{"rules": [');
        await waitFor('the JSON error', () => (refusals().some((l) => l.includes('not valid JSON')) ? true : undefined));
        expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
        // Other apps are not disturbed.
        expect((await httpGet(`${node.publicUrl}/`, { host: 'solo.test' })).status).toBe(200);
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
        // The plugin words its own checks; an HAProxy node's agent runs the CLI's.
        const words = rig.differs.policyReader.reportsIn === 'data plane'
          ? { control: '/: not valid JSON: control character in a string', array: '/rules: must be an array', object: '/: must be a JSON object' }
          : { control: '/: not valid JSON: Bad control character in string literal', array: '/rules: must be array', object: '/: must be object' };
        expect(await refused('{"rules":[{"match":{"percentage":{"value":NaN,"by":"ip"}},"version":"grey"}]}')).toContain('/: not valid JSON');
        expect(await refused('{"rules":[{"match":{"percentage":{"value":0x10,"by":"ip"}},"version":"grey"}]}')).toContain('/: not valid JSON');
        expect(await refused('{"seed":"a\tb"}')).toContain(words.control);
        expect(await refused('{"rules": {}}')).toContain(words.array);
        expect(await refused('[]')).toContain(words.object);
        expect(await versionFor({ cookie: 'grey=1' })).toBe('grey');
        const forged = await refused('{"rules":[{"match":{"ip":["10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged"]},"version":"grey"}]}');
        expect(forged).toContain('"10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged" is not an IPv4 or IPv6 CIDR');
        expect(node.dataPlane.log()).not.toMatch(/^2026\/01\/01 00:00:00 \[emerg\] forged/m);
        expect(policyLog().join('\n')).not.toMatch(/^2026\/01\/01 00:00:00 \[emerg\] forged/m);
      });

      it('sends everything to the default version once the policy is removed', async () => {
        await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
        await redis.del('edgeroute:policy:shop');
        await waitFor('the default', async () => ((await versionFor({ cookie: 'grey=1' })) === 'stable' ? true : undefined), 3_000);
      });

      it('never evaluates a policy for a single-version app', async () => {
        // shop's policy is in force (HAProxy holds only loaded ones); /solo's is never read.
        await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=1' }, expect: 'grey' });
        await redis.set('edgeroute:policy:/solo', '{"rules": "not even valid"}');
        await new Promise((r) => setTimeout(r, 1_200));
        expect((await policyStatus()).apps).toEqual(['shop']);
        expect(policyLog().join('\n')).not.toContain('/solo refused');
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
        const { redisLost, redisBack } = rig.differs.policyReader;
        const up = policyLog().length;
        redis.disconnect();
        await redisServer.stop();
        await waitFor('the policy reader to notice', () => (policyLog().slice(up).some((l) => l.includes(redisLost)) ? true : undefined), 5_000);
        await new Promise((r) => setTimeout(r, 1_000));
        const [t, o] = await Promise.all([testers.stop(), others.stop()]);
        console.log(`redis down: ${t.sent + o.sent} requests, ${t.failed + o.failed} failed`);
        expect([...t.failures, ...o.failures]).toEqual([]);
        expect([...t.byBackend.keys()].sort()).toEqual(greyIds);
        expect([...o.byBackend.keys()].sort()).toEqual([...stableIds].sort());

        // Redis returns (empty: this one keeps no data); the refresh resumes.
        const down = policyLog().length;
        redisServer = await startRedis({ port });
        redis = new Redis(redisServer.url);
        await waitFor('the policy reader to reconnect', () => (policyLog().slice(down).some((l) => l.includes(redisBack)) ? true : undefined), 5_000);
        await setPolicy({ rules: [{ match: { cookie: { name: 'grey', values: ['2'] } }, version: 'grey' }] }, { headers: { cookie: 'grey=2' }, expect: 'grey' });
      });

      it('sends traffic to the default version when no policy was ever loaded', async () => {
        const deadRedis = 'redis://127.0.0.1:1';
        const lonely = await startRigNode(rig, marathon.url, {}, planeOptions(deadRedis));
        try {
          await waitFor('routing', async () => ((await httpGet(`${lonely.publicUrl}/`, { host: 'shop.test' })).status === 200 ? true : undefined));
          for (let i = 0; i < 10; i++) expect(await versionFor({ cookie: 'grey=1' }, '/', lonely.publicUrl)).toBe('stable');
        } finally {
          await lonely.stop();
        }
      });
    });

    /**
     * What the policy reader logged, a complete line (or a message) each, so
     * a count taken now is where the next one goes: nginx's error log, or
     * the agent's log on HAProxy nodes.
     */
    function policyLog(): string[] {
      if (rig.differs.policyReader.reportsIn === 'agent') return node.logs.lines().map((l) => String(l.msg));
      const text = node.dataPlane.log();
      return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(0, -1);
    }

    /** The "refused" lines of the shop's policy. */
    function refusals(): string[] {
      return policyLog().filter((l) => l.includes('split policy of app shop refused'));
    }

    /**
     * The apps whose policy the data plane holds, and the shop's: loaded (a
     * good one is in force) and the last refusal since. nginx: the plugin's
     * /edgeroute/status. HAProxy: the p: records in rules.map (the only
     * policies its Lua evaluates) and the agent's log.
     */
    async function policyStatus(): Promise<{ apps: string[]; shop?: { loaded: boolean; error: string | null } }> {
      const nginx = node.dataPlane.nginx;
      if (nginx) {
        const res = await fetch(`${nginx.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginx.adminToken}` } });
        const body = (await res.json()) as { policies: Record<string, { loaded: boolean; error: string | null }> };
        return { apps: Object.keys(body.policies), ...(body.policies.shop ? { shop: body.policies.shop } : {}) };
      }
      const haproxy = node.dataPlane.haproxy!;
      // show map: "0xADDR KEY VALUE"; a long record is split as KEY → "#N", KEY#1..KEY#N.
      const map = await haproxy.runtime(`show map ${join(haproxy.dir, 'rules.map')}`);
      const apps = [...new Set([...map.matchAll(/^0x[0-9a-f]+ p:([^\s#]+)[\s#]/gm)].map((m) => decodeURIComponent(m[1]!)))].sort();
      let error: string | null = null;
      for (const line of node.logs.lines()) {
        if (line.app !== 'shop') continue;
        const msg = String(line.msg);
        if (msg.startsWith('split policy of app shop refused')) error = (line.problems as string[])[0] ?? msg;
        else if (msg.startsWith('split policy of app shop loaded') || msg.startsWith('no split policy for app shop')) error = null;
      }
      const loaded = apps.includes('shop');
      return { apps, ...(loaded || error !== null ? { shop: { loaded, error } } : {}) };
    }

    /** A uid whose bucket is inside (or outside) [from, to): for probes that must route one way. */
    function userIn(seed: string, inside: boolean, to = 3000, from = 0): string {
      for (let i = 0; ; i++) {
        const bucket = bucketOf(seed, 'shop', `probe-${i}`);
        if ((bucket >= from && bucket < to) === inside) return `probe-${i}`;
      }
    }
  });
}
