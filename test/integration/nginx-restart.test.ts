// nginx restarted (not reloaded): it serves the agent's last table from the
// snapshot file before the agent pushes, and the agent notices the new nginx
// and pushes everything.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';

let marathon: MarathonSim;
let node: RoutingNode;
const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);

beforeAll(async () => {
  marathon = await MarathonSim.start();
  node = await startRoutingNode(marathon.url);
  await node.restartAgent({ snapshotFile: node.nginx.snapshotFile });
  await marathon.deploy({ id: '/web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test' } });
  await waitForBackends(node.nginx.publicUrl, 'web.test', taskIds('/web'));
});

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
});

describe('nginx restart', () => {
  it('serves the last table from the snapshot before any agent pushes', async () => {
    await waitFor('the snapshot file', () => (node.nginx.snapshotFile && existsSync(node.nginx.snapshotFile) ? true : undefined), 10_000);
    await node.agent.stop();
    const before = node.nginx.process.masterPid;
    await node.nginx.restart();
    expect(node.nginx.process.masterPid).not.toBe(before);
    // No agent is running: this table can only come from the snapshot.
    await waitForBackends(node.nginx.publicUrl, 'web.test', taskIds('/web'), 3_000);
    expect(node.nginx.process.errorLog()).toContain('loaded the routing table of 1 apps from');
  });

  it('is noticed by the agent, which pushes the whole table within about a second', async () => {
    await node.restartAgent({ snapshotFile: node.nginx.snapshotFile });
    await waitFor('the first push', () => (node.agent.reconciler.stats.pushes > 0 || node.agent.reconciler.pushedVersion ? true : undefined));
    await waitFor('the agent to know this nginx', () => (node.agent.reconciler.stats.syncs > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1_500)); // one nginx check at least
    const fullBefore = node.agent.reconciler.stats.fullPushes;

    // A change the snapshot does not have, then a restart.
    await marathon.scale('/web', 3);
    await waitForBackends(node.nginx.publicUrl, 'web.test', taskIds('/web'));
    await node.nginx.restart();
    await waitFor('the restart to be noticed', () => (node.logs.has((l) => l.msg === 'nginx restarted; pushing the full table') ? true : undefined), 5_000);
    await waitFor('a full push', () => (node.agent.reconciler.stats.fullPushes > fullBefore ? true : undefined), 5_000);
    await waitForBackends(node.nginx.publicUrl, 'web.test', taskIds('/web'));
    expect((await httpGet(`${node.nginx.publicUrl}/`, { host: 'nobody.test' })).status).toBe(404);
  });
});
