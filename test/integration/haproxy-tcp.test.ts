// L4 on an HAProxy routing node: apps with edgeroute.tcpPort are reached
// through one TCP frontend that binds a port range (haproxy-conf --tcp-ports)
// and picks a TCP pool backend by destination port (tcp-ports.map, edited at
// run time). Tasks are TCP echo servers the test runs (the simulator's
// virtual tasks point at them). Scale, drain and a new app under continuous
// TCP load: zero failed connections, and the HAProxy worker PID unchanged.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { EchoServers, exchange, freePortRange, startTcpLoad } from '../helpers/tcp-echo.js';

const RANGE = 4;
let marathon: MarathonSim;
let node: HaproxyRoutingNode;
let workerPid: number;
let base: number;
const echoes = new EchoServers();

async function reaches(port: number, names: readonly string[], timeoutMs = 15_000): Promise<void> {
  const want = new Set(names);
  await waitFor(`port ${port} reaching ${names.join(', ')}`, async () => {
    const got = new Set<string>();
    for (let i = 0; i < names.length * 8; i++) got.add(await exchange(port).catch(() => '?'));
    return got.size === want.size && [...got].every((n) => want.has(n)) ? true : undefined;
  }, timeoutMs);
}

const namesOf = (appId: string) => marathon.tasks(appId).map((t) => echoes.nameAt(t.port) ?? `?${t.port}`);

beforeAll(async () => {
  marathon = await MarathonSim.start();
  base = await freePortRange(RANGE);
  node = await startHaproxyRoutingNode(marathon.url, { nodeId: 'edge-tcp', listen: '127.0.0.1:0' }, { backendPool: 2, tcpPorts: `${base}-${base + RANGE - 1}`, tcpBackendPool: 2 });
  workerPid = await node.haproxy.workerPid();
}, 30_000);

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
  await echoes.stopAll();
});

const expectNoReload = async () => expect(await node.haproxy.workerPid()).toBe(workerPid);

describe('TCP apps on an HAProxy routing node', () => {
  const echoPorts: number[] = [];

  it('routes a TCP echo app through its Marathon service port (edgeroute.tcpPort=service)', async () => {
    for (let i = 0; i < 4; i++) echoPorts.push(await echoes.start(`echo-${i}`));
    await marathon.deploy({
      id: '/echo',
      instances: 2,
      backendPorts: echoPorts,
      taskKillGracePeriodSeconds: 1,
      labels: { 'edgeroute.tcpPort': 'service' },
      extra: { portDefinitions: [{ port: base, protocol: 'tcp', name: 'echo', labels: {} }] },
    });
    await reaches(base, namesOf('/echo'));
    const map = await node.haproxy.runtime(`show map ${join(node.haproxy.dir, 'tcp-ports.map')}`);
    expect(map).toMatch(new RegExp(` ${base} tcp-pool-\\d+`));
    await expectNoReload();
  }, 30_000);

  it('follows a scale up and down under continuous TCP load with zero failed connections', async () => {
    const load = startTcpLoad(base);
    await waitFor('traffic', () => (load.sent() > 50 ? true : undefined), 10_000);
    await marathon.scale('/echo', 4);
    await waitFor('all four tasks answering', () => (load.seen.size === 4 ? true : undefined), 15_000);
    const before = new Set(marathon.tasks('/echo').map((t) => t.id));
    await marathon.scale('/echo', 2);
    const left = new Set(marathon.tasks('/echo').map((t) => t.id));
    const gone = [...before].filter((id) => !left.has(id));
    expect(gone).toHaveLength(2);
    // Drained, then deleted once idle; only then do their processes go away.
    await waitFor('the drained servers deleted', () => (gone.every((id) => node.logs.has((l) => l.task === id && l.msg === 'drained server removed from haproxy')) ? true : undefined), 15_000);
    const stillRouted = new Set(namesOf('/echo'));
    for (const port of echoes.ports()) if (echoPorts.includes(port) && !stillRouted.has(echoes.nameAt(port)!)) await echoes.stop(port);
    const after = load.sent();
    await waitFor('more traffic', () => (load.sent() > after + 100 ? true : undefined), 10_000);
    const report = await load.stop();
    expect(report.failures).toEqual([]);
    expect(report.sent).toBeGreaterThan(200);
    await reaches(base, namesOf('/echo'));
    await expectNoReload();
  }, 60_000);

  it('adds a second TCP app on another port under load, zero failed; a port two apps claim warns naming both', async () => {
    const load = startTcpLoad(base);
    await waitFor('traffic', () => (load.sent() > 50 ? true : undefined), 10_000);
    const ports = [await echoes.start('other-0'), await echoes.start('other-1')];
    await marathon.deploy({ id: '/other', instances: 2, backendPorts: ports, labels: { 'edgeroute.tcpPort': String(base + 2) } });
    await reaches(base + 2, ['other-0', 'other-1']);
    const load2 = startTcpLoad(base + 2, 2);
    await marathon.deploy({ id: '/zother', instances: 1, backendPorts: ports, labels: { 'edgeroute.tcpPort': String(base + 2) } });
    await waitFor('the conflict warning', () => (node.logs.has((l) => l.app === '/zother' && String(l.problem).includes(`TCP port ${base + 2} is already routed to app /other`)) ? true : undefined), 10_000);
    const after = load.sent();
    await waitFor('more traffic', () => (load.sent() > after + 100 && load2.sent() > 100 ? true : undefined), 10_000);
    const [first, second] = [await load.stop(), await load2.stop()];
    expect(first.failures).toEqual([]);
    expect(second.failures).toEqual([]);
    await expectNoReload();
  }, 60_000);

  it('a restarted agent reads back the TCP pool and changes no server; a restarted HAProxy gets the TCP ports again', async () => {
    const servers = async () => (await node.haproxy.runtime('show servers state')).split('\n').filter((l) => / tcp-pool-\d+ /.test(l)).map((l) => l.split(' ').slice(1, 4).join(' ')).sort();
    const routed = marathon.tasks('/echo').length + marathon.tasks('/other').length;
    await waitFor('drains finished', async () => ((await servers()).length === routed ? true : undefined), 15_000);
    const before = await servers();
    await node.restartAgent();
    await waitFor('the new agent synced', () => (node.logs.has((l) => String(l.msg).startsWith('pushed routing table to haproxy')) ? true : undefined), 15_000);
    expect(await servers()).toEqual(before);
    await reaches(base, namesOf('/echo'));
    await reaches(base + 2, ['other-0', 'other-1']);
    await expectNoReload();
    await node.haproxy.restart();
    await reaches(base, namesOf('/echo'));
    await reaches(base + 2, ['other-0', 'other-1']);
    workerPid = await node.haproxy.workerPid();
  }, 60_000);

  it('warns, naming the app, when its TCP port is outside the range HAProxy binds', async () => {
    await marathon.deploy({ id: '/far', instances: 1, backendPorts: [echoPorts[0]!], labels: { 'edgeroute.tcpPort': String(base + RANGE + 5) } });
    await waitFor('the range warning', () => (node.logs.has((l) => l.app === '/far' && String(l.msg).includes('outside the TCP port range')) ? true : undefined), 10_000);
    // The port goes to the next claimant when its holder is removed, and is closed once nobody claims it.
    await marathon.removeApp('/other');
    await reaches(base + 2, ['other-0']);
    await marathon.removeApp('/zother');
    await waitFor(`port ${base + 2} unrouted`, async () => ((await exchange(base + 2).catch(() => 'closed')) === 'closed' ? true : undefined), 15_000);
    for (let i = 0; i < 5; i++) await expect(exchange(base + 2)).rejects.toThrow();
    // A port no app ever held is closed too.
    await expect(exchange(base + 3)).rejects.toThrow();
    await expectNoReload();
  }, 30_000);
});
