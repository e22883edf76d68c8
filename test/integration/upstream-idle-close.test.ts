// nginx closes an idle keep-alive connection to a task itself, after
// nginx-conf's --upstream-idle-timeout (4 s by default), so that a task whose
// own idle timeout is longer never closes one under a request: nginx sends a
// GET again on another connection, but never a POST it has written (502).
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { pushRoutes, route } from '../helpers/direct-push.js';

let nginx: NginxNode;
let server: Server;
let port: number;
/** Each connection nginx opened to the task: when it opened, and when nginx closed it (the task closes none for 60 s). */
const connections: Array<{ openedAt: number; closedByNginxAt: number | null }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('task-1'));
  });
  // Longer than the node's idle timeout: whoever closes first is nginx.
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    const record = { openedAt: performance.now(), closedByNginxAt: null as number | null };
    connections.push(record);
    socket.on('end', () => (record.closedByNginxAt = performance.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  nginx = await startNginxNode({ workerProcesses: 1, upstreamIdleTimeoutSeconds: 1 });
  await pushRoutes(nginx, [route('/app', ['app.test'], [{ id: 'task-1', port }])]);
}, 30_000);

afterAll(async () => {
  await nginx?.process.stop();
  server?.closeAllConnections();
  server?.close();
});

describe('idle connections to tasks', () => {
  it('are closed by nginx after --upstream-idle-timeout, before the task would, and a request after that opens a new one', async () => {
    for (const method of ['GET', 'POST']) {
      const reply = await httpRequest(`${nginx.publicUrl}/`, { host: 'app.test', method, body: method === 'POST' ? 'order=42' : undefined });
      expect(reply.status).toBe(200);
      expect(reply.body).toBe('task-1');
    }
    // Both requests took one kept-alive connection.
    expect(connections).toHaveLength(1);
    const first = connections[0]!;
    await waitFor('nginx closing the idle connection', () => (first.closedByNginxAt !== null ? true : undefined), 10_000);
    const idleMs = (first.closedByNginxAt as number) - first.openedAt;
    expect(idleMs).toBeGreaterThan(900);
    expect(idleMs).toBeLessThan(5_000);
    expect((await httpRequest(`${nginx.publicUrl}/`, { host: 'app.test', method: 'POST', body: 'order=43' })).status).toBe(200);
    expect(connections).toHaveLength(2);
  }, 30_000);
});
