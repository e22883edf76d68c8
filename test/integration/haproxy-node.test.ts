// An HAProxy routing node: Marathon (simulator) → the agent with
// --haproxy-socket → HAProxy's runtime API → real backends. Apps, scales and
// drains reach clients with the HAProxy worker's PID unchanged (no reload);
// a restarted HAProxy gets everything back from the agent.
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startLoad } from '../helpers/load.js';
import { waitForBackends, waitForStatus } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
let marathon: MarathonSim;
let redis: RedisServer;
let node: HaproxyRoutingNode;
let workerPid: number;

const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
const url = () => node.haproxy.publicUrl;

beforeAll(async () => {
  marathon = await MarathonSim.start();
  redis = await startRedis();
  node = await startHaproxyRoutingNode(marathon.url, { redis: redis.url, nodeId: 'edge-h', listen: '127.0.0.1:0' }, { backendPool: 3 });
  workerPid = await node.haproxy.workerPid();
  expect(workerPid).toBeGreaterThan(0);
}, 30_000);

afterAll(async () => {
  await node?.stop();
  await redis?.stop();
  await marathon?.stop();
});

async function expectNoReload(): Promise<void> {
  expect(await node.haproxy.workerPid()).toBe(workerPid);
}

describe('an HAProxy routing node', () => {
  it('answers 404 for an unknown host', async () => {
    const body = await waitForStatus(url(), 'nobody.test', 404);
    expect(body).toContain('no app serves this host');
  });

  it('routes an app by host, to every task, and a host with a port too', async () => {
    await marathon.deploy({ id: '/web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test,WWW.web.test' } });
    await waitForBackends(url(), 'web.test', taskIds('/web'));
    await waitForBackends(url(), 'www.web.test:80', taskIds('/web'));
    await expectNoReload();
  });

  it('follows a scale up and down with no reload, and never keeps a duplicate map entry', async () => {
    await marathon.scale('/web', 4);
    await waitForBackends(url(), 'web.test', taskIds('/web'));
    await marathon.scale('/web', 1);
    await waitForBackends(url(), 'web.test', taskIds('/web'));
    await expectNoReload();
    const map = await node.haproxy.runtime(`show map ${join(node.haproxy.dir, 'hosts.map')}`);
    expect(map.split('\n').filter((l) => / web\.test /.test(l))).toHaveLength(1);
    // Drained servers are deleted once idle.
    await waitFor('drained servers deleted', async () => ((await node.haproxy.runtime('show servers state')).split('\n').filter((l) => / pool-\d+ /.test(l)).length === 1 ? true : undefined), 15_000);
  });

  it('answers 503 for an app without tasks, and 404 once it is removed', async () => {
    await marathon.deploy({ id: '/empty', instances: 0, labels: { 'edgeroute.vhosts': 'empty.test' } });
    await waitForStatus(url(), 'empty.test', 503);
    await marathon.removeApp('/empty');
    await waitForStatus(url(), 'empty.test', 404);
  });

  it('warns, naming the app, when the pool runs out', async () => {
    await marathon.deploy({ id: '/two', instances: 1, labels: { 'edgeroute.vhosts': 'two.test' } });
    await waitForBackends(url(), 'two.test', taskIds('/two'));
    // The pool has 3; /empty's backend is free again once its servers are gone (it had none).
    await marathon.deploy({ id: '/three', instances: 1, labels: { 'edgeroute.vhosts': 'three.test' } });
    await waitForBackends(url(), 'three.test', taskIds('/three'));
    await marathon.deploy({ id: '/four', instances: 1, labels: { 'edgeroute.vhosts': 'four.test', 'edgeroute.path': '/api' } });
    await waitFor('the pool warning', () => (node.logs.has((l) => l.app === '/four' && String(l.msg).includes('no free backend')) ? true : undefined));
    expect((await httpGet(`${url()}/`, { host: 'four.test' })).status).toBe(404);
    // Paths are applied (by the Lua action), not warned about.
    expect(node.logs.has((l) => l.app === '/four' && String(l.msg).includes('does not apply'))).toBe(false);
    // Removing an app frees its backend for the waiting one.
    await marathon.removeApp('/three');
    await waitForStatus(url(), 'three.test', 404);
    await marathon.deploy({ id: '/four', instances: 1, labels: { 'edgeroute.vhosts': 'four.test', 'edgeroute.path': '/api', 'edgeroute.weight': '50' } });
    await waitForBackends(`${url()}/api`, 'four.test', taskIds('/four'), 15_000);
    await expectNoReload();
  }, 60_000);

  it('a drain takes a task out under load with no failed request', async () => {
    await marathon.scale('/web', 3);
    await waitForBackends(url(), 'web.test', taskIds('/web'));
    const [victim] = taskIds('/web');
    const load = startLoad(url(), 'web.test', { concurrency: 4 });
    await waitFor('traffic', () => (load.sent() > 50 ? true : undefined), 10_000);
    const run = await execa(process.execPath, [BIN, 'drain', victim as string, '--marathon', marathon.url, '--redis', redis.url], { reject: false, all: true, timeout: 60_000, env: { EDGEROUTE_ADMIN_TOKEN: '' } });
    expect(run.exitCode, run.all).toBe(0);
    const after = load.sent();
    await waitFor('more traffic', () => (load.sent() > after + 50 ? true : undefined), 10_000);
    const report = await load.stop();
    expect(report.failures).toEqual([]);
    await waitForBackends(url(), 'web.test', taskIds('/web').filter((id) => id !== victim));
    // Out by drain, then maintenance and deletion once idle (not a cut).
    await waitFor('the drained server deleted', () => (node.logs.has((l) => l.task === victim && l.msg === 'drained server removed from haproxy') ? true : undefined), 15_000);
    await expectNoReload();
  }, 90_000);

  it('a restarted agent reads back what HAProxy holds and changes nothing that is right', async () => {
    const servers = async () => (await node.haproxy.runtime('show servers state')).split('\n').filter((l) => / pool-\d+ /.test(l)).map((l) => l.split(' ').slice(1, 4).join(' ')).sort();
    // /web has one task drained (still running in Marathon, out of the table).
    const routed = taskIds('/web').length - 1 + taskIds('/two').length + taskIds('/four').length;
    await waitFor('drains finished', async () => ((await servers()).length === routed ? true : undefined), 15_000);
    const before = await servers();
    await node.restartAgent();
    await waitFor('the new agent synced', () => (node.logs.has((l) => String(l.msg).startsWith('pushed routing table to haproxy')) ? true : undefined), 15_000);
    expect(await servers()).toEqual(before);
    expect(before).toHaveLength(routed);
    await waitForBackends(`${url()}/api`, 'four.test', taskIds('/four'));
    await waitForBackends(url(), 'two.test', taskIds('/two'));
    expect(node.logs.has((l) => String(l.msg).includes('no free backend'))).toBe(false);
    await expectNoReload();
  }, 30_000);

  it('re-applies everything when HAProxy restarts', async () => {
    await node.haproxy.restart();
    expect(await node.haproxy.workerPid()).not.toBe(workerPid);
    await waitForBackends(url(), 'two.test', taskIds('/two'), 15_000);
    await waitForStatus(url(), 'nobody.test', 404);
    expect(node.logs.has((l) => String(l.msg).includes('haproxy restarted; pushing the full table'))).toBe(true);
  }, 30_000);
});

describe('edgeroute agent --haproxy-socket', () => {
  const agent = (args: string[]) =>
    execa(process.execPath, [BIN, 'agent', '--marathon', 'http://127.0.0.1:1', ...args], { reject: false, timeout: 20_000, env: { EDGEROUTE_ADMIN_TOKEN: '', EDGEROUTE_API_TOKEN: '' } });

  it('refuses two data planes and a missing API token, with exit code 2', async () => {
    let run = await agent(['--haproxy-socket', '/tmp/x.sock', '--nginx-admin', 'http://127.0.0.1:8081', '--api-token', 'x'.repeat(20)]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('give one of them');
    run = await agent(['--haproxy-socket', '/tmp/x.sock']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('EDGEROUTE_API_TOKEN');
    run = await agent(['--help']);
    expect(run.stdout).toContain('--haproxy-socket');
  });
});
