/**
 * The shared host of path-oracle.ts on the push target's nginx (no agent):
 * one echo backend per app, answering with the app and the raw request
 * target it received (the simulator's task servers do not tell the path),
 * and the table pushed as the agent would compute it from the apps' labels.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import type { NginxNode } from '../../agent/sandbox/sandbox.js';
import { PATH_APPS, PATHS_HOST, type PathApp } from './path-oracle.js';

export interface PathEcho {
  readonly app: string;
  /** The request target as it reached the backend, latin1. */
  readonly url: string;
}

export interface PathTable {
  stop(): Promise<void>;
}

/**
 * A backend that answers each request with its app and the request target
 * exactly as received, bytes included: Node's HTTP parser refuses raw bytes
 * above 0x7f in a target, which nginx forwards as written.
 */
async function startEcho(app: PathApp): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    let data = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = data.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (data.length < end + 4 + length) return;
        data = data.subarray(end + 4 + length);
        const target = head.split('\r\n')[0]!.split(' ')[1] ?? '';
        const body = JSON.stringify({ app: app.id, url: Buffer.from(target, 'latin1').toString('base64') });
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-path-app: ${app.id}\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Reads an echo body; null when it is not one. */
export function readPathEcho(body: Buffer): PathEcho | null {
  try {
    const echo = JSON.parse(body.toString('utf8')) as { app?: unknown; url?: unknown };
    if (typeof echo.app !== 'string' || typeof echo.url !== 'string') return null;
    return { app: echo.app, url: Buffer.from(echo.url, 'base64').toString('latin1') };
  } catch {
    return null;
  }
}

/** Starts the echo backends and pushes their table to `nginx`; resolves once every worker routes by it. */
export async function startPathTable(nginx: NginxNode): Promise<PathTable> {
  const echoes = await Promise.all(PATH_APPS.map(startEcho));
  const sockets = new Set<Socket>();
  for (const { server } of echoes) server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const stop = async () => {
    // nginx keeps idle upstream connections open: closing the servers waits for none of them.
    for (const socket of sockets) socket.destroy();
    await Promise.all(echoes.map(({ server }) => new Promise((resolve) => server.close(resolve))));
  };
  try {
    const version = `paths-${Date.now()}`;
    const routes = PATH_APPS.map((app, i) => ({
      id: app.id,
      hash: `h-${version}-${i}`,
      vhosts: [PATHS_HOST],
      ...(app.prefixes.length === 1 && app.prefixes[0] === '/' ? {} : { paths: { [PATHS_HOST]: app.prefixes } }),
      ...(app.stripPath ? { settings: { stripPath: true } } : {}),
      defaultVersion: 'stable',
      versions: { stable: { marathonAppId: app.id, backends: [{ id: `${app.id.slice(1)}.task-0`, address: '127.0.0.1', port: echoes[i]!.port, weight: 100 }] } },
    }));
    const authorization = `Bearer ${nginx.adminToken}`;
    const body = [JSON.stringify({ version, base: null }), ...routes.map((route) => JSON.stringify(route))].join('\n') + '\n';
    const reply = await httpRequest(`${nginx.adminUrl}/edgeroute/apps`, { method: 'POST', body, headers: { authorization, 'content-type': 'application/x-ndjson' }, timeoutMs: 10_000 });
    if (reply.status !== 200) throw new Error(`the path table was refused: ${reply.status} ${reply.body}`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const state = await httpRequest(`${nginx.adminUrl}/edgeroute/inflight`, { headers: { authorization } });
      const parsed = JSON.parse(state.body) as { version?: string | null; settled?: boolean };
      if (parsed.settled === true && parsed.version === version) break;
      if (Date.now() > deadline) throw new Error(`the workers did not take the path table: ${state.body.slice(0, 200)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
