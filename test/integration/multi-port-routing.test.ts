// Several ports per app through real data planes: HTTP by vhost on port
// index 0 and a TCP service port on port index 1, in the edgeroute form
// (edgeroute.port.1.tcpPort) and in marathon-lb's (the fixture's
// /shop/gateway: HAPROXY_0_VHOST, HAPROXY_1_MODE=tcp, its own
// HAPROXY_1_GROUP). Each task has a distinct port per index (the sim's
// morePorts): an HTTP task server at index 0, a TCP echo at index 1, so what
// answered tells which port of which task was reached. On nginx nodes the
// vhost routes (TCP is HAProxy's only); on HAProxy nodes both do, with no
// reload.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarathonSim, type SimTask } from '../sim/marathon-sim.js';
import { RIGS, startRigNode, type DataPlanePids, type RigNode } from '../helpers/data-plane-rig.js';
import { EchoServers, exchange, freePortRange } from '../helpers/tcp-echo.js';
import { answers, waitForBackends } from '../helpers/traffic.js';
import { waitFor } from '../../agent/sandbox/wait.js';

interface FixtureApp {
  id: string;
  labels: Record<string, string>;
}

const FIXTURE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'marathon-lb', 'apps.json'), 'utf8')) as { apps: FixtureApp[] };
const GATEWAY = FIXTURE.apps.find((a) => a.id === '/shop/gateway') as FixtureApp;

describe.each(RIGS)('several ports per app: a vhost on port 0, a TCP service port on port 1 ($kind)', (rig) => {
  let marathon: MarathonSim;
  let node: RigNode;
  let base: number;
  let pidsBefore: DataPlanePids;
  const echoes = new EchoServers();
  /** App id → its tasks as deployed. */
  const tasks = new Map<string, SimTask[]>();

  /** Two tasks whose port 1 is an echo server named `<name>-tcp-<n>`. */
  async function deployTwoPorts(id: string, name: string, labels: Record<string, string>, servicePort1: number): Promise<void> {
    const tcp = [await echoes.start(`${name}-tcp-0`), await echoes.start(`${name}-tcp-1`)];
    const deployed = await marathon.deploy({
      id,
      instances: 2,
      labels,
      morePorts: [tcp],
      extra: {
        portDefinitions: [
          { port: servicePort1 + 100, protocol: 'tcp', name: 'http', labels: {} },
          { port: servicePort1, protocol: 'tcp', name: 'tcp', labels: {} },
        ],
      },
    });
    tasks.set(id, deployed);
  }

  /** The echo names behind the tasks' port index 1, as the sim listed them. */
  const tcpNamesOf = (id: string) => tasks.get(id)!.map((t) => echoes.nameAt(t.ports[1]!)!);
  const taskIds = (id: string) => tasks.get(id)!.map((t) => t.id);

  async function reaches(port: number, names: readonly string[]): Promise<void> {
    await waitFor(`port ${port} reaching ${names.join(', ')}`, async () => {
      const got = new Set<string>();
      for (let i = 0; i < names.length * 8; i++) got.add(await exchange(port).catch(() => '?'));
      return [...got].sort().join(',') === [...names].sort().join(',') ? true : undefined;
    }, 15_000);
  }

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    base = await freePortRange(2);
    node = await startRigNode(rig, marathon.url, { marathonLbLabels: true, group: 'external,internal' }, { backendPool: 4, tcpPorts: `${base}-${base + 1}`, tcpBackendPool: 4 });
    pidsBefore = await node.pids();
    await deployTwoPorts('/gw/native', 'native', { 'edgeroute.vhosts': 'native.example.com', 'edgeroute.group': 'external', 'edgeroute.port.1.tcpPort': 'service' }, base);
    await deployTwoPorts(GATEWAY.id, 'gateway', GATEWAY.labels, base + 1);
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
    await echoes.stopAll();
  });

  it('routes each vhost to the tasks\' port-0 servers only (every answer a 200 from a task id)', async () => {
    // The sim's tasks have two distinct ports each: port 0 answers HTTP with the task id, port 1 is a TCP echo.
    for (const t of [...tasks.get('/gw/native')!, ...tasks.get(GATEWAY.id)!]) expect(t.ports).toEqual([t.port, expect.any(Number)]);
    await waitForBackends(node.publicUrl, 'native.example.com', taskIds('/gw/native'));
    await waitForBackends(node.publicUrl, 'gateway.example.com', taskIds(GATEWAY.id));
    for (const [host, id] of [['native.example.com', '/gw/native'], ['Gateway.Example.com', GATEWAY.id]] as const) {
      const seen = await answers(node.publicUrl, host, 16);
      expect([...seen.keys()].sort()).toEqual(taskIds(id).sort());
    }
  });

  it.runIf(rig.kind === 'haproxy')('routes port 1 in TCP on its service port to the tasks\' port-1 backends (edgeroute.port.1.tcpPort and HAPROXY_1_MODE=tcp)', async () => {
    await reaches(base, tcpNamesOf('/gw/native'));
    await reaches(base + 1, tcpNamesOf(GATEWAY.id));
    // Nothing of port 0 leaks to port 1's listener and back: both vhosts still answer from port 0.
    await waitForBackends(node.publicUrl, 'native.example.com', taskIds('/gw/native'));
  });

  it('scales both ports together, and routes by the new task\'s own ports; the data plane is never reloaded', async () => {
    const name = 'native';
    const extra = await echoes.start(`${name}-tcp-2`);
    // The third task launched takes morePorts[0][2 % length]: give it its own echo.
    const app = '/gw/native';
    const labels = { 'edgeroute.vhosts': 'native.example.com', 'edgeroute.group': 'external', 'edgeroute.port.1.tcpPort': 'service' };
    const first = tasks.get(app)!;
    const deployed = await marathon.deploy({
      id: app,
      instances: 3,
      labels,
      morePorts: [[first[0]!.ports[1]!, first[1]!.ports[1]!, extra]],
      extra: {
        portDefinitions: [
          { port: base + 100, protocol: 'tcp', name: 'http', labels: {} },
          { port: base, protocol: 'tcp', name: 'tcp', labels: {} },
        ],
      },
    });
    expect(deployed).toHaveLength(3);
    tasks.set(app, deployed);
    await waitForBackends(node.publicUrl, 'native.example.com', taskIds(app));
    if (rig.kind === 'haproxy') await reaches(base, tcpNamesOf(app));
    expect(tcpNamesOf(app).sort()).toEqual(['native-tcp-0', 'native-tcp-1', 'native-tcp-2']);
    expect(await node.pids()).toEqual(pidsBefore);
  });
});
