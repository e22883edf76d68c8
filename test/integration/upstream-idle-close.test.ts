// Both data planes close an idle keep-alive connection to a task themselves,
// within --upstream-idle-timeout (4 s by default), so that a task whose own
// idle timeout is longer never closes one under a request: nginx and HAProxy
// never send a POST they have written again (the client gets 502, or HAProxy
// closes its kept-alive connection). nginx closes it at the timeout
// (keepalive_timeout); HAProxy purges it 2 to 3 eighths of it after its last
// request (pool-purge-delay, which the agent reads from the config when it
// adds a server).
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HaproxyDataPlane } from '../../agent/dataplane/haproxy/haproxy-data-plane.js';
import { startNginxNode } from '../../agent/sandbox/sandbox.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { pushRoutes, route } from '../helpers/direct-push.js';
import { startHaproxy, type HaproxyProcess } from '../helpers/haproxy-node.js';
import { captureLog } from '../helpers/log-capture.js';

/** Each connection a router opened to the task: when its last answer went out, and when the router closed it (the task closes none for 60 s). */
interface TaskConnection {
  lastAnsweredAt: number;
  closedByRouterAt: number | null;
}

/** A task that keeps idle connections 60 s: whoever closes one first is the router. */
async function startPatientTask(): Promise<{ port: number; connections: TaskConnection[]; server: Server }> {
  const connections: TaskConnection[] = [];
  const bySocket = new Map<Socket, TaskConnection>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.end('task-1');
      const record = bySocket.get(req.socket);
      if (record) record.lastAnsweredAt = performance.now();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    const record: TaskConnection = { lastAnsweredAt: performance.now(), closedByRouterAt: null };
    connections.push(record);
    bySocket.set(socket, record);
    // nginx closes with a FIN, HAProxy's purge with a reset: either way the socket closes.
    socket.on('close', () => (record.closedByRouterAt ??= performance.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, connections, server };
}

/** The pool-purge-delay of every server in the pool (`show servers conn`: "BACKEND/SERVER ids addr port - DELAY ..."). */
async function purgeDelaysMs(haproxy: HaproxyProcess): Promise<number[]> {
  const lines = (await haproxy.runtime('show servers conn')).split('\n').filter((l) => /^pool-\d+\//.test(l));
  return lines.map((l) => Number(l.trim().split(/\s+/)[5]));
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** GET and POST on one connection, the router closing it once idle (ms after the last answer, within `idleMs`), then a POST on a new one. */
async function closesIdleConnections(publicUrl: string, task: Awaited<ReturnType<typeof startPatientTask>>, idleMs: { min: number; max: number }): Promise<void> {
  // One client connection: HAProxy sends the first request of a client's connection on a new server
  // connection (http-reuse safe), and only later ones on an idle one.
  const client = new Agent({ keepAlive: true, maxSockets: 1 });
  stops.push(async () => client.destroy());
  for (const method of ['GET', 'POST']) {
    const reply = await httpRequest(`${publicUrl}/`, { host: 'app.test', method, body: method === 'POST' ? 'order=42' : undefined, agent: client });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('task-1');
  }
  // Both requests took one kept-alive connection to the task.
  expect(task.connections).toHaveLength(1);
  const first = task.connections[0]!;
  await waitFor('the router closing the idle connection', () => (first.closedByRouterAt !== null ? true : undefined), 10_000);
  const idle = (first.closedByRouterAt as number) - first.lastAnsweredAt;
  expect(idle).toBeGreaterThan(idleMs.min);
  expect(idle).toBeLessThan(idleMs.max);
  expect((await httpRequest(`${publicUrl}/`, { host: 'app.test', method: 'POST', body: 'order=43', agent: client })).status).toBe(200);
  expect(task.connections).toHaveLength(2);
}

describe('idle connections to tasks', () => {
  it('are closed by nginx after --upstream-idle-timeout, before the task would, and a request after that opens a new one', async () => {
    const task = await startPatientTask();
    stops.push(async () => {
      task.server.closeAllConnections();
      task.server.close();
    });
    const nginx = await startNginxNode({ workerProcesses: 1, upstreamIdleTimeoutSeconds: 1 });
    stops.push(() => nginx.process.stop());
    await pushRoutes(nginx, [route('/app', ['app.test'], [{ id: 'task-1', port: task.port }])]);
    await closesIdleConnections(nginx.publicUrl, task, { min: 900, max: 5_000 });
  }, 30_000);

  it('are closed by HAProxy within --upstream-idle-timeout (purged every eighth of it), on a server the agent added, and a request after that opens a new one', async () => {
    const task = await startPatientTask();
    stops.push(async () => {
      task.server.closeAllConnections();
      task.server.close();
    });
    const haproxy = await startHaproxy({ upstreamIdleTimeoutSeconds: 1.5 });
    stops.push(() => haproxy.stop());
    const plane = new HaproxyDataPlane({ socket: haproxy.socket }, pino({ level: 'silent' }));
    stops.push(() => plane.close());
    const applied = await plane.apply({ version: 'v1', base: null, apps: { '/app': route('/app', ['app.test'], [{ id: 'task-1', port: task.port }]) } });
    expect(applied.ok).toBe(true);
    // Purged 2 to 3 delays of 187 ms after its last request; a third of the timeout (500 ms) took 1 to 1.5 s,
    // HAProxy's old 5 s delay 10 to 15 s.
    await closesIdleConnections(haproxy.publicUrl, task, { min: 300, max: 1_000 });
    expect(await purgeDelaysMs(haproxy)).toEqual([187]);
  }, 30_000);

  it('on an HAProxy config from an older haproxy-conf, the agent adds servers as before (5 s) and says once to regenerate it', async () => {
    const haproxy = await startHaproxy({ editConf: (conf) => conf.replace(/^\s+set-var proc\.edgeroute_pool_purge_delay_ms .*\n/m, '') });
    stops.push(() => haproxy.stop());
    const logs = captureLog();
    const plane = new HaproxyDataPlane({ socket: haproxy.socket }, logs.log);
    stops.push(() => plane.close());
    const tasks = [{ id: 'task-1', port: 40_001 }];
    for (const version of ['v1', 'v2']) {
      const applied = await plane.apply({ version, base: null, apps: { '/app': route('/app', ['app.test'], tasks) } });
      expect(applied.ok).toBe(true);
      tasks.push({ id: `task-${tasks.length + 1}`, port: 40_000 + tasks.length + 1 });
    }
    expect(await purgeDelaysMs(haproxy)).toEqual([5_000, 5_000]);
    expect(logs.lines().filter((l) => String(l['msg']).includes('runs a config from an older edgeroute haproxy-conf'))).toHaveLength(1);
  }, 30_000);
});
