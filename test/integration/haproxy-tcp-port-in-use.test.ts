// A TCP port another process on the node already listens on, with a real
// HAProxy binding a port range: outside the range, the app's port is not
// routed and one warning names the app, the port and the listener; inside
// it, the port stays routed and one warning names the other listener. A port
// two apps claim: one warning, naming both.
import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { freePortRange } from '../helpers/tcp-echo.js';

const RANGE = 3;
let marathon: MarathonSim;
let node: HaproxyRoutingNode;
let base: number;
const servers: Server[] = [];

async function listen(port: number, host: string, onConnection: (socket: import('node:net').Socket) => void = (s) => s.end()): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  servers.push(server);
  return (server.address() as { port: number }).port;
}

/** A TCP echo task: answers the first chunk with `name:chunk`. */
const echo = (name: string) => listen(0, '127.0.0.1', (socket) => socket.once('data', (d) => socket.end(`${name}:${String(d)}`)));

function exchange(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 5_000);
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (d) => (reply += String(d)));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

const warningsFor = (app: string) => node.logs.lines().filter((l) => l.app === app && l.level === 40);

beforeAll(async () => {
  marathon = await MarathonSim.start();
  base = await freePortRange(RANGE);
  node = await startHaproxyRoutingNode(marathon.url, { nodeId: 'edge-ports', listen: '127.0.0.1:0' }, { backendPool: 1, tcpPorts: `${base}-${base + RANGE - 1}`, tcpBackendPool: 4 });
}, 30_000);

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('a TCP port already in use on an HAProxy node', () => {
  it('outside the range: not routed, one warning naming the app, the port and the listener', async () => {
    const taken = await listen(0, '127.0.0.1');
    const task = await echo('busy-0');
    await marathon.deploy({ id: '/busy', instances: 1, backendPorts: [task], labels: { 'edgeroute.tcpPort': String(taken) } });
    await waitFor('the in-use warning', () => (warningsFor('/busy').length > 0 ? true : undefined), 10_000);
    const [warning] = warningsFor('/busy');
    expect(warning!.msg).toContain(`app /busy asks for TCP port ${taken} (edgeroute.tcpPort), but another process on this node already listens on it (127.0.0.1:${taken} (pid ${process.pid} `);
    expect(warning!.tcpPort).toBe(taken);
    // Later syncs (a scale) do not repeat it, nor add the out-of-range warning.
    await marathon.scale('/busy', 2);
    await waitFor('the scale synced', () => (node.logs.lines().filter((l) => String(l.msg).startsWith('pushed routing table to haproxy')).length >= 2 ? true : undefined), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(warningsFor('/busy')).toHaveLength(1);
  }, 30_000);

  it('inside the range: routed, and one warning naming the other listener', async () => {
    const port = base + 1;
    // HAProxy binds 127.0.0.1 on every port of the range; this one is also listened on at 127.0.0.2.
    await listen(port, '127.0.0.2');
    const task = await echo('shared-0');
    await marathon.deploy({ id: '/shared', instances: 1, backendPorts: [task], labels: { 'edgeroute.tcpPort': String(port) } });
    await waitFor('the port routed', async () => ((await exchange(port).catch(() => '')) === 'shared-0:ping' ? true : undefined), 15_000);
    await waitFor('the warning', () => (warningsFor('/shared').length > 0 ? true : undefined), 10_000);
    const warnings = warningsFor('/shared');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain(`app /shared's TCP port ${port} (edgeroute.tcpPort) is also listened on by another process on this node (127.0.0.2:${port} (pid ${process.pid} `);
    expect(warnings[0]!.msg).toMatch(/\)\): connections it accepts do not reach the app$/);
    // A port of the range nobody else listens on warns about nothing.
    const quiet = await echo('quiet-0');
    await marathon.deploy({ id: '/quiet', instances: 1, backendPorts: [quiet], labels: { 'edgeroute.tcpPort': String(base) } });
    await waitFor('the quiet port routed', async () => ((await exchange(base).catch(() => '')) === 'quiet-0:ping' ? true : undefined), 15_000);
    expect(warningsFor('/quiet')).toEqual([]);
  }, 40_000);

  it('a port two apps claim: one warning, naming both', async () => {
    const port = base + 2;
    const [a, b] = [await echo('first-0'), await echo('second-0')];
    await marathon.deploy({ id: '/first', instances: 1, backendPorts: [a], labels: { 'edgeroute.tcpPort': String(port) } });
    await waitFor('the port routed to /first', async () => ((await exchange(port).catch(() => '')) === 'first-0:ping' ? true : undefined), 15_000);
    await marathon.deploy({ id: '/second', instances: 1, backendPorts: [b], labels: { 'edgeroute.tcpPort': String(port) } });
    await waitFor('the conflict warning', () => (warningsFor('/second').length > 0 ? true : undefined), 10_000);
    await marathon.scale('/second', 2);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const warnings = warningsFor('/second');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.problem).toBe(`TCP port ${port} is already routed to app /first; not routed here`);
    expect(await exchange(port)).toBe('first-0:ping');
  }, 40_000);
});
