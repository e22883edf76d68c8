// Redis with TLS and an ACL user, as a locked-down production Redis runs: the
// agent, the CLI and the plugin all reach it over rediss:// as user `edge`,
// verify its certificate, say clearly when something is refused, and never
// write the password anywhere but nginx's 0600 password file.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, redisTlsOptions } from '../../agent/fleet/redis-link.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };
// Distinctive, so finding them anywhere is never a coincidence.
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString('hex')}`;
// The least-privilege user the README suggests: its keys and channels only, no admin commands.
const EDGE_RULES = '~edgeroute:* &edgeroute:* +@all -@dangerous +info';

let redisServer: RedisServer;
let admin: Redis;
let marathon: MarathonSim;
let secure: NginxNode;
let secureAgent: AgentProcess;
let refusedNginx: NginxNode | null = null;
let refusedAgent: AgentProcess | null = null;
let misnamed: RoutingNode | null = null;
let stableIds: string[];
let greyIds: string[];
const cliOutput: string[] = [];
const dirs: string[] = [];

const shop = (version: string, instances: number) => ({
  id: `/shop-${version}`,
  instances,
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
  healthChecks: [HEALTH_CHECK],
});

async function edgeroute(args: string[], env: Record<string, string> = {}, input?: string) {
  const run = await execa(process.execPath, [BIN, ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '', ...env }, input });
  cliOutput.push(String(run.stdout), String(run.stderr));
  return run;
}

/** Which version answered, by task id and by the response header. */
async function versionFor(url: string, headers: Record<string, string> = {}): Promise<string> {
  const reply = await httpGet(`${url}/`, { host: 'shop.test', headers });
  expect(reply.status).toBe(200);
  const byTask = stableIds.includes(reply.body) ? 'stable' : greyIds.includes(reply.body) ? 'grey' : `unknown:${reply.body}`;
  expect(reply.headers['x-edgeroute-version']).toBe(byTask);
  return byTask;
}

function agentArgs(nginx: NginxNode, redisUrl: string, nodeId: string): string[] {
  return ['--marathon', marathon.url, '--nginx-admin', nginx.adminUrl, '--redis', redisUrl, '--redis-ca', redisServer.caFile ?? '', '--node-id', nodeId];
}

/** Failed AUTHs Redis recorded for user edge (ACL LOG folds repeats into one entry's count). */
async function refusedAuths(): Promise<number> {
  const entries = (await admin.call('ACL', 'LOG')) as unknown[][];
  let count = 0;
  for (const entry of entries) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    if (fields.get('reason') === 'auth' && fields.get('username') === 'edge') count += Number(fields.get('count'));
  }
  return count;
}

const linesWith = (text: string, needle: string) => text.split('\n').filter((line) => line.includes(needle));

beforeAll(async () => {
  redisServer = await startRedis({
    tls: true,
    users: [
      { name: 'edge', password: PASSWORD, rules: EDGE_RULES },
      { name: 'admin', password: randomBytes(12).toString('hex') },
    ],
  });
  admin = new Redis(redisServer.urlFor('admin'), { lazyConnect: true, ...redisTlsOptions(redisServer.url, redisServer.caFile) });
  await connectRedis(admin, redisServer.urlFor('admin'));
  marathon = await MarathonSim.start();
  stableIds = (await marathon.deploy(shop('stable', 2))).map((t) => t.id);
  greyIds = (await marathon.deploy(shop('grey', 1))).map((t) => t.id);
  secure = await startNginxNode({ workerProcesses: 2, redis: redisServer.urlFor('edge'), redisCa: redisServer.caFile ?? undefined, versionResponseHeader: true });
  secureAgent = spawnAgent(agentArgs(secure, redisServer.urlFor('edge'), 'secure-node'), { EDGEROUTE_ADMIN_TOKEN: secure.adminToken });
  await waitForBackends(secure.publicUrl, 'shop.test', stableIds, 30_000);
});

afterAll(async () => {
  await refusedAgent?.stop();
  await secureAgent?.stop();
  await misnamed?.stop();
  await refusedNginx?.process.stop();
  await secure?.process.stop();
  admin?.disconnect();
  await marathon?.stop();
  await redisServer?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('rediss:// with an ACL user', () => {
  it('refuses clients without the password, and user edge outside its keys', async () => {
    const anonymous = new Redis(redisServer.url, { lazyConnect: true, retryStrategy: () => null, ...redisTlsOptions(redisServer.url, redisServer.caFile) });
    try {
      await expect(connectRedis(anonymous, redisServer.url)).rejects.toThrow(/wants a user and password.*NOAUTH/);
    } finally {
      anonymous.disconnect();
    }
    const edge = new Redis(redisServer.urlFor('edge'), { lazyConnect: true, ...redisTlsOptions(redisServer.url, redisServer.caFile) });
    try {
      await connectRedis(edge, redisServer.urlFor('edge'));
      await expect(edge.get('other:key')).rejects.toThrow(/NOPERM/);
      await expect(edge.call('ACL', 'LOG')).rejects.toThrow(/NOPERM/);
    } finally {
      edge.disconnect();
    }
  });

  it('the agent writes health memory and joins the fleet over TLS as user edge', async () => {
    const health = await waitFor('health memory in Redis', async () => {
      const raw = await admin.get(`edgeroute:health:${stableIds[0]}`);
      return raw === null ? undefined : (JSON.parse(raw) as { healthy: boolean });
    });
    expect(health.healthy).toBe(true);
    const node = await waitFor('the heartbeat', async () => (await admin.hget('edgeroute:nodes', 'secure-node')) ?? undefined);
    expect(JSON.parse(node)).toMatchObject({ nodeId: 'secure-node' });
    expect(secureAgent.output()).toContain('"msg":"redis connected"');
    expect(secureAgent.output()).toContain('rediss://edge:***@127.0.0.1');
  });

  it('the plugin splits by a policy that `edgeroute policy set` wrote over TLS (CA from EDGEROUTE_REDIS_CA)', async () => {
    const env = { EDGEROUTE_REDIS: redisServer.urlFor('edge'), EDGEROUTE_REDIS_CA: redisServer.caFile ?? '' };
    const policy = JSON.stringify({ rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] });
    const run = await edgeroute(['policy', 'set', 'shop', '-'], env, policy);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    await waitFor('the plugin to read the policy over TLS', async () => ((await versionFor(secure.publicUrl, { cookie: 'grey=1' })) === 'grey' ? true : undefined), 5_000);
    for (let i = 0; i < 6; i++) {
      expect(await versionFor(secure.publicUrl, { cookie: 'grey=1' })).toBe('grey');
      expect(await versionFor(secure.publicUrl)).toBe('stable');
    }
    expect((await edgeroute(['policy', 'list'], env)).stdout.split('\n')).toContain('shop');
    expect(secure.process.errorLog()).not.toMatch(/redis TLS handshake|refused the password|cannot connect to redis|NOPERM/);
  });

  it('edgeroute drain waits for the agent, which reads the marks over TLS', async () => {
    const task = stableIds[0] as string;
    const common = ['--marathon', marathon.url, '--redis', redisServer.urlFor('edge'), '--redis-ca', redisServer.caFile ?? '', '--drain-timeout', '20'];
    const drained = await edgeroute(['drain', task, ...common]);
    expect(drained.stderr).toBe('');
    expect(drained.exitCode).toBe(0);
    await waitForBackends(secure.publicUrl, 'shop.test', stableIds.slice(1));
    const lifted = await edgeroute(['drain', '--lift', task, ...common]);
    expect(lifted.exitCode).toBe(0);
    await waitForBackends(secure.publicUrl, 'shop.test', stableIds);
    // Everything the agent does fits the least-privilege user.
    expect(secureAgent.output()).not.toContain('NOPERM');
  });
});

describe('refusals are clear, and fast', () => {
  it('a plain redis:// client at the TLS port fails at once, saying to use rediss://', async () => {
    const started = Date.now();
    const run = await edgeroute(['policy', 'list'], { EDGEROUTE_REDIS: redisServer.urlFor('edge').replace('rediss:', 'redis:') });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/redis at 127\.0\.0\.1:\d+ closed the connection before answering.*use rediss:\/\//);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a certificate from an unknown CA is refused (the system bundle does not know the sandbox CA)', async () => {
    const run = await edgeroute(['policy', 'list'], { EDGEROUTE_REDIS: redisServer.urlFor('edge') });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/redis TLS handshake with 127\.0\.0\.1:\d+ failed: self[- ]signed certificate in certificate chain/);
  });

  it('a wrong password stops drain before anything happens, and --redis-ca on a plain URL is bad usage', async () => {
    const refused = await edgeroute(['drain', 'some-task', '--marathon', marathon.url, '--redis', redisServer.urlFor('edge', WRONG_PASSWORD), '--redis-ca', redisServer.caFile ?? '']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('redis refused the password for user edge: WRONGPASS');
    const plain = await edgeroute(['policy', 'list', '--redis', 'redis://127.0.0.1:6379', '--redis-ca', redisServer.caFile ?? '']);
    expect(plain.exitCode).toBe(2);
    expect(plain.stderr).toContain('--redis-ca is only for rediss://');
  });

  it('a wrong password: agent and plugin say so once each, and requests go to the default version', async () => {
    const wrongUrl = redisServer.urlFor('edge', WRONG_PASSWORD);
    refusedNginx = await startNginxNode({ workerProcesses: 2, redis: wrongUrl, redisCa: redisServer.caFile ?? undefined, versionResponseHeader: true });
    const nginx = refusedNginx;
    refusedAgent = spawnAgent(agentArgs(nginx, wrongUrl, 'refused-node'), { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken });
    const agent = refusedAgent;
    await waitFor('the agent to report the refusal', () => (agent.output().includes('redis refused the password for user edge: WRONGPASS') ? true : undefined), 15_000);
    // The agent routes without Redis: the policy it cannot read leaves every request on stable.
    await waitForBackends(nginx.publicUrl, 'shop.test', stableIds, 15_000);
    await waitFor('the plugin to report the refusal', () => (nginx.process.errorLog().includes('redis refused the password for user edge: WRONGPASS') ? true : undefined), 10_000);
    const firstNginxRefusal = Date.now();
    for (let i = 0; i < 6; i++) expect(await versionFor(nginx.publicUrl, { cookie: 'grey=1' })).toBe('stable');
    expect(await versionFor(secure.publicUrl, { cookie: 'grey=1' })).toBe('grey');

    // Once per cause, not per attempt: wait until both have been refused again and again.
    const before = await refusedAuths();
    await waitFor('more refused attempts', async () => ((await refusedAuths()) >= before + 4 && Date.now() - firstNginxRefusal > 6_000 ? true : undefined), 20_000, 250);
    expect(linesWith(agent.output(), 'redis refused the password for user edge')).toHaveLength(1);
    expect(linesWith(nginx.process.errorLog(), 'redis refused the password for user edge')).toHaveLength(1);
    expect(agent.output()).not.toContain('"msg":"redis connected"');
    expect(await admin.hget('edgeroute:nodes', 'refused-node')).toBeNull();
  });

  it('the plugin checks the name on the certificate, not only the CA', async () => {
    misnamed = await startRoutingNode(marathon.url, {}, { redis: redisServer.urlFor('edge'), redisCa: redisServer.caFile ?? undefined, redisTlsName: 'elsewhere.test', versionResponseHeader: true });
    const node = misnamed;
    await waitForBackends(node.nginx.publicUrl, 'shop.test', stableIds);
    const line = await waitFor('the handshake failure', () => linesWith(node.nginx.process.errorLog(), 'redis TLS handshake with')[0], 10_000);
    expect(line).toMatch(/redis TLS handshake with 127\.0\.0\.1:\d+ failed: .*expected a certificate for elsewhere\.test/);
    expect(node.nginx.process.errorLog()).toContain('lua ssl certificate does not match host "elsewhere.test"');
    expect(await versionFor(node.nginx.publicUrl, { cookie: 'grey=1' })).toBe('stable');
  });
});

describe('where the password is', () => {
  it('only in the 0600 redis-password file: not in nginx.conf, error.log, the agents’ logs or the CLI output', () => {
    const nodes = [secure, refusedNginx, misnamed?.nginx].filter((n): n is NginxNode => n !== null && n !== undefined);
    expect(nodes).toHaveLength(3);
    for (const node of nodes) {
      const conf = readFileSync(join(node.prefix, 'nginx.conf'), 'utf8');
      expect(conf).toContain('password_file = ');
      expect(conf).toContain(`lua_ssl_trusted_certificate ${redisServer.caFile};`);
      expect(statSync(join(node.prefix, 'redis-password')).mode & 0o777).toBe(0o600);
      for (const text of [conf, node.process.errorLog()]) {
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain(WRONG_PASSWORD);
      }
    }
    expect(readFileSync(join(secure.prefix, 'redis-password'), 'utf8').trim()).toBe(PASSWORD);
    const logs = [secureAgent.output(), refusedAgent?.output() ?? '', ...cliOutput, ...(misnamed ? [JSON.stringify(misnamed.logs.lines())] : [])].join('\n');
    expect(logs).toContain('WRONGPASS');
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toContain(WRONG_PASSWORD);
  });
});

describe('edgeroute nginx-conf', () => {
  it('writes lua_ssl_* only for rediss://, and nginx -t accepts them', async () => {
    const tls = mkdtempSync(join(tmpdir(), 'edgeroute-redis-conf-'));
    const plain = mkdtempSync(join(tmpdir(), 'edgeroute-redis-conf-'));
    dirs.push(tls, plain);
    const base = ['nginx-conf', '--listen', '127.0.0.1:18080', '--admin-listen', '127.0.0.1:18081'];
    const run = await edgeroute([...base, '--out', tls, '--redis', redisServer.urlFor('edge'), '--redis-ca', redisServer.caFile ?? '', '--check']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const conf = readFileSync(join(tls, 'nginx.conf'), 'utf8');
    expect(conf).toContain('lua_ssl_verify_depth');
    expect(conf).toMatch(/tls = true,\s+server_name = "127\.0\.0\.1",/);
    const bare = await edgeroute([...base, '--out', plain, '--redis', 'redis://127.0.0.1:6379']);
    expect(bare.exitCode).toBe(0);
    expect(readFileSync(join(plain, 'nginx.conf'), 'utf8')).not.toContain('lua_ssl');
    const noCa = await edgeroute([...base, '--out', plain, '--redis', 'redis://127.0.0.1:6379', '--redis-ca', redisServer.caFile ?? '']);
    expect(noCa.exitCode).toBe(2);
  });
});
