// Marathon → agent (the real CLI) → Lua shared dict → real nginx → real
// backends. Every routing change must reach clients while nginx's master and
// worker PIDs stay the same: no reload, ever.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { answers, waitForBackends, waitForStatus } from '../helpers/traffic.js';

let nginx: NginxNode;
let marathon: MarathonSim;
let agent: AgentProcess;
let pids: { master: number; workers: number[] };

const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);

function expectSamePids(): void {
  expect(nginx.process.masterPid).toBe(pids.master);
  expect(nginx.process.workerPids()).toEqual(pids.workers);
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2 });
  marathon = await MarathonSim.start();
  agent = spawnAgent(['--marathon', marathon.url, '--nginx-admin', nginx.adminUrl], { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken });
  pids = { master: nginx.process.masterPid, workers: nginx.process.workerPids() };
  expect(pids.workers).toHaveLength(2);
});

afterAll(async () => {
  await agent?.stop();
  await marathon?.stop();
  await nginx?.process.stop();
});

describe('routing follows Marathon without reloading nginx', () => {
  it('answers 404 for an unknown host', async () => {
    await waitForStatus(nginx.publicUrl, 'nobody.test', 404);
    const reply = await httpGet(`${nginx.publicUrl}/`, { host: 'nobody.test' });
    expect(reply.body).toContain('no app serves this host');
  });

  it('routes a new app by Host to all its tasks', async () => {
    await marathon.deploy({ id: '/web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test,*.web.test' } });
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    await waitForBackends(nginx.publicUrl, 'a.b.web.test', taskIds('/web'));
    expectSamePids();
  });

  it('follows a scale from 2 to 5 and back to 1', async () => {
    await marathon.scale('/web', 5);
    expect(taskIds('/web')).toHaveLength(5);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    expectSamePids();

    await marathon.scale('/web', 1);
    expect(taskIds('/web')).toHaveLength(1);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    expectSamePids();
  });

  it('follows a killed and replaced task', async () => {
    const [old] = taskIds('/web');
    await marathon.killTask(old as string, { replace: true });
    const now = taskIds('/web');
    expect(now).toHaveLength(1);
    expect(now).not.toContain(old);
    await waitForBackends(nginx.publicUrl, 'web.test', now);
    expectSamePids();
  });

  it('adds a second app, then a vhost, then removes the app', async () => {
    await marathon.deploy({ id: '/api', instances: 2, labels: { 'edgeroute.vhosts': 'api.test' } });
    await waitForBackends(nginx.publicUrl, 'api.test', taskIds('/api'));

    await marathon.deploy({ id: '/web', instances: 1, labels: { 'edgeroute.vhosts': 'web.test,*.web.test,www.test' } });
    await waitForBackends(nginx.publicUrl, 'www.test', taskIds('/web'));
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));

    await marathon.removeApp('/api');
    await waitForStatus(nginx.publicUrl, 'api.test', 404);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    expectSamePids();
  });

  it('removes a vhost from an app', async () => {
    await marathon.deploy({ id: '/web', instances: 1, labels: { 'edgeroute.vhosts': 'web.test' } });
    await waitForStatus(nginx.publicUrl, 'www.test', 404);
    await waitForStatus(nginx.publicUrl, 'x.web.test', 404);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    expectSamePids();
  });

  it('answers 503 for a known app without running tasks', async () => {
    await marathon.deploy({ id: '/empty', instances: 0, labels: { 'edgeroute.vhosts': 'empty.test' } });
    const body = await waitForStatus(nginx.publicUrl, 'empty.test', 503);
    expect(body).toContain('no backend');
    expectSamePids();
  });

  it('skips an app with a malformed label with one warning naming it, and routes the rest', async () => {
    await marathon.deploy({ id: '/broken', instances: 1, labels: { 'edgeroute.vhosts': 'ok.test', 'edgeroute.portIndex': 'http' } });
    await marathon.deploy({ id: '/fine', instances: 1, labels: { 'edgeroute.vhosts': 'fine.test' } });
    await waitForBackends(nginx.publicUrl, 'fine.test', taskIds('/fine'));
    await waitForStatus(nginx.publicUrl, 'ok.test', 404);
    await waitFor('the warning', () => (agent.output().includes('"app":"/broken"') ? true : undefined));
    const warnings = agent
      .output()
      .split('\n')
      .filter((line) => line.includes('"app":"/broken"') && line.includes('not routed as labelled'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('edgeroute.portIndex=\\"http\\"');
    // More syncs happen; the warning is not repeated.
    await marathon.scale('/fine', 2);
    await waitForBackends(nginx.publicUrl, 'fine.test', taskIds('/fine'));
    expect(agent.output().split('\n').filter((line) => line.includes('"app":"/broken"') && line.includes('not routed as labelled'))).toHaveLength(1);
    expectSamePids();
  });

  it('serves every request of a steady app while other apps change', async () => {
    const before = await answers(nginx.publicUrl, 'web.test', 50);
    expect([...before.keys()]).toEqual(taskIds('/web'));
    expectSamePids();
    expect(nginx.process.errorLog()).not.toMatch(/signal \d+|worker process \d+ exited/);
  });
});
