// `edgeroute watch --fleet` as an operator runs it, against a mixed fleet on
// one Redis: an nginx routing node and an HAProxy routing node. The command
// (a real child process) prints both nodes with their data plane, in step,
// then, once the HAProxy node's agent is stopped, a new table flagging that
// node; Ctrl-C ends it with exit code 0.
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const WAIT_MS = 20_000;

let redisServer: RedisServer;
let marathon: MarathonSim;
let nginxNode: RoutingNode;
let haproxyNode: HaproxyRoutingNode;
let haproxyAgentStopped = false;
let watch: ResultPromise<{ reject: false; all: true }> | null = null;

beforeAll(async () => {
  await execa(process.execPath, [BIN, '--version']);
  [redisServer, marathon] = await Promise.all([startRedis(), MarathonSim.start()]);
  [nginxNode, haproxyNode] = await Promise.all([
    startRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-n', listen: '127.0.0.1:0' }, { redis: redisServer.url }),
    startHaproxyRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-h' }),
  ]);
  await Promise.all([nginxNode.agent.ready, haproxyNode.agent.ready]);
  await marathon.deploy({ id: '/web', instances: 1, labels: { 'edgeroute.vhosts': 'web.test' } });
  await waitFor('/web on both nodes', async () => {
    const [n, h] = await Promise.all([httpGet(`${nginxNode.nginx.publicUrl}/`, { host: 'web.test' }), httpGet(`${haproxyNode.haproxy.publicUrl}/`, { host: 'web.test' })]);
    return n.status === 200 && h.status === 200 ? true : undefined;
  }, WAIT_MS);
}, 90_000);

afterAll(async () => {
  watch?.kill('SIGKILL');
  await nginxNode?.stop();
  if (haproxyAgentStopped) await haproxyNode?.haproxy.stop();
  else await haproxyNode?.stop();
  await Promise.all([marathon?.stop(), redisServer?.stop()]);
});

/** The last table the command printed: its node lines by node id. */
function lastTable(output: string): Map<string, string> {
  const tables = output.split(/^\d\d:\d\d:\d\d \d+ nodes?, \d+ out of step$/m);
  const lines = (tables[tables.length - 1] ?? '').split('\n').filter((l) => /^edge-/.test(l));
  return new Map(lines.map((l) => [l.split(/\s+/)[0]!, l]));
}

describe('edgeroute watch --fleet', () => {
  it('prints both nodes with their data plane, then flags the node whose agent stopped', async () => {
    watch = execa(process.execPath, [BIN, 'watch', '--fleet', '--agent', nginxNode.agent.apiUrl as string, '--interval', '0.3'], { reject: false, all: true, env: { EDGEROUTE_ADMIN_TOKEN: '' } });
    let output = '';
    watch.all!.on('data', (chunk: Buffer) => (output += chunk.toString()));

    const inStep = await waitFor('both nodes in step', async () => {
      const table = lastTable(output);
      return table.size === 2 && [...table.values()].every((l) => l.endsWith('in step')) ? table : undefined;
    }, WAIT_MS, 100);
    expect(output).toMatch(/^node\s+plane\s+table\s+vs this\s+policies\s+last push\s+drains\s+heartbeat\s+status$/m);
    expect(inStep.get('edge-n')).toMatch(/^edge-n \(this\)\s+nginx\s+\S+\s+same\s/);
    expect(inStep.get('edge-h')).toMatch(/^edge-h\s+haproxy\s+\S+\s+same\s/);

    haproxyAgentStopped = true;
    await haproxyNode.agent.stop();
    const flagged = await waitFor('the stopped node flagged', async () => {
      const table = lastTable(output);
      return table.get('edge-h')?.includes('OUT OF STEP') ? table : undefined;
    }, WAIT_MS, 100);
    expect(flagged.get('edge-h')).toMatch(/OUT OF STEP: agent stopped \d+ s ago; its data plane keeps the last table$/);
    expect(flagged.get('edge-n')).toMatch(/in step$/);
    expect(output).toMatch(/^\d\d:\d\d:\d\d 2 nodes, 1 out of step$/m);

    watch.kill('SIGINT');
    const result = await watch;
    watch = null;
    expect(result.exitCode, result.all).toBe(0);
  }, 90_000);
});
