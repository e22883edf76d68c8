// Per-route labels end to end: Marathon apps labelled as users label them,
// the agent, real nginx. Several apps share a host by path; a bad value
// skips only its app, with one warning naming app and label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { waitForBackends } from '../helpers/traffic.js';

let marathon: MarathonSim;
let node: RoutingNode;
let started: { master: number; workers: number[] };

const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
const get = (host: string, path: string) => httpRequest(`${node.nginx.publicUrl}${path}`, { host });

beforeAll(async () => {
  marathon = await MarathonSim.start({ heartbeatMs: 500 });
  node = await startRoutingNode(marathon.url, { listen: '127.0.0.1:0' });
  started = { master: node.nginx.process.masterPid, workers: node.nginx.process.workerPids() };
});

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
});

describe('labels on Marathon apps', () => {
  it('routes /api and /auth of one host to their apps and the rest to the site, without a reload', async () => {
    await marathon.deploy({ id: '/site', instances: 1, labels: { 'edgeroute.vhosts': 'one.test' } });
    await marathon.deploy({ id: '/api', instances: 2, labels: { 'edgeroute.vhosts': 'one.test', 'edgeroute.path': '/api', 'edgeroute.stripPath': 'true' } });
    await marathon.deploy({ id: '/auth', instances: 1, labels: { 'edgeroute.vhosts': 'one.test', 'edgeroute.path': '/auth/' } });
    await waitForBackends(node.nginx.publicUrl, 'one.test', taskIds('/site'));
    await waitFor('/api routed', async () => (taskIds('/api').includes((await get('one.test', '/api/headers')).body.match(/"taskId":"([^"]+)"/)?.[1] ?? '') ? true : undefined));
    // Stripped: the task saw /headers, which it answers with JSON.
    expect(JSON.parse((await get('one.test', '/api/headers')).body).taskId).toMatch(/^api\./);
    expect(taskIds('/auth')).toContain((await get('one.test', '/auth/x')).body);
    expect(taskIds('/site')).toContain((await get('one.test', '/authx')).body);
    expect(node.nginx.process.masterPid).toBe(started.master);
    expect(node.nginx.process.workerPids()).toEqual(started.workers);
  });

  it('shows every route\'s paths and settings in /v1/state', async () => {
    await marathon.deploy({
      id: '/tuned',
      instances: 1,
      labels: { 'edgeroute.vhosts': 'tuned.test', 'edgeroute.readTimeout': '90', 'edgeroute.balance': 'leastconn', 'edgeroute.allowFrom': '127.0.0.0/8' },
    });
    await waitForBackends(node.nginx.publicUrl, 'tuned.test', taskIds('/tuned'));
    const state = (await (await fetch(`${node.agent.apiUrl}/v1/state`)).json()) as { apps: Array<{ id: string; paths: unknown; settings: unknown }> };
    expect(state.apps.find((a) => a.id === '/tuned')).toMatchObject({ paths: { 'tuned.test': ['/'] }, settings: { readTimeout: 90, balance: 'leastconn', allowFrom: ['127.0.0.0/8'] } });
    expect(state.apps.find((a) => a.id === '/api')).toMatchObject({ paths: { 'one.test': ['/api'] }, settings: { stripPath: true } });
  });

  it('skips an app with a bad value, with one warning naming app and label, and routes the rest', async () => {
    await marathon.deploy({ id: '/broken', instances: 1, labels: { 'edgeroute.vhosts': 'broken.test', 'edgeroute.allowFrom': '10.0.0.0/40' } });
    await marathon.deploy({ id: '/fine', instances: 1, labels: { 'edgeroute.vhosts': 'fine.test', 'edgeroute.path': '/x' } });
    await waitFor('/fine routed', async () => ((await get('fine.test', '/x')).status === 200 ? true : undefined));
    expect((await get('broken.test', '/')).status).toBe(404);
    const warnings = node.logs.lines().filter((l) => l.app === '/broken' && String(l.problem).includes('edgeroute.allowFrom'));
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.problem)).toContain('"10.0.0.0/40"');
  });

  it('gives a (host, path) two apps claim to the first by id, and warns once naming both', async () => {
    await marathon.deploy({ id: '/zz-late', instances: 1, labels: { 'edgeroute.vhosts': 'one.test', 'edgeroute.path': '/api' } });
    await waitFor('the claim warning', async () => (node.logs.has((l) => l.app === '/zz-late' && String(l.problem).includes('host one.test path /api is already routed to app /api')) ? true : undefined));
    expect(taskIds('/api')).toContain(JSON.parse((await get('one.test', '/api/headers')).body).taskId);
  });
});
