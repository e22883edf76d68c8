import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { closeServer, listen } from './server-lifecycle.js';

/**
 * A running task's HTTP endpoint: answers every request with 200 and the task id; a path starting
 * with `/slow/<ms>` is answered after <ms> milliseconds (a long request; closing the server meanwhile
 * destroys its connection, as when the process dies); `/headers` answers with the request headers
 * it received, as JSON `{"taskId", "headers": [name, value, name, value, ...]}` (raw, duplicates kept).
 * A WebSocket upgrade is accepted and every message echoed as `<taskId>:<message>`; closing the
 * server cuts open WebSockets too, as the task's death would.
 * A path holding `/drop-first/<token>`: the first arrival of a token at any task of this process is read whole and its
 * connection closed without an answer (a task dying under it, or closing a kept-alive connection as the
 * request came); later arrivals, a router sending it again, are answered. `dropFirstArrivals(token)`
 * tells how many arrived.
 */
export interface TaskServer {
  readonly port: number;
  /** Stops listening and drops idle keep-alive connections, so the port refuses at once. */
  close(): Promise<void>;
}

/** Requests one task server received: counts and Date.now() of the first and last arrival. */
export interface TaskRequestStats {
  requests: number;
  firstRequestAt: number | null;
  lastRequestAt: number | null;
  /** Requests being answered now, by method. */
  inflight?: Record<string, number>;
  /** The requests, by method, that were cut off when the server closed (the task died under them). */
  cutOff?: Record<string, number>;
}

const SLOW_PATH = /^\/slow\/(\d+)/;
const DROP_FIRST_PATH = /\/drop-first\/([^/?]+)/;
/** Token → arrivals, over every task server of this process (a retry may reach another task). */
const dropFirstSeen = new Map<string, number>();

/** How many times a `/drop-first/<token>` request arrived at any task (the first was dropped). */
export function dropFirstArrivals(token: string): number {
  return dropFirstSeen.get(token) ?? 0;
}
const HEADERS_PATH = /^\/headers(\?|$)/;
/** nginx passes up to 4 × 8 KiB of headers; Node's default (16 KiB) would refuse some it lets through. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The delay a `/slow/<ms>` path asks for, or null. */
function slowPathDelay(url: string | undefined): number | null {
  const match = SLOW_PATH.exec(url ?? '');
  return match ? Number(match[1]) : null;
}

function echoHeaders(req: IncomingMessage, res: ServerResponse, taskId: string): void {
  const body = JSON.stringify({ taskId, headers: req.rawHeaders });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Task-Id': taskId });
  res.end(body);
}

function answer(res: ServerResponse, taskId: string): void {
  if (res.destroyed) return;
  res.writeHead(200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(taskId),
    'X-Task-Id': taskId,
  });
  res.end(taskId);
}

/** Starts a task server on `host`, on a port the OS picks; `stats` (if given) is updated as each request arrives. */
export async function startTaskServer(taskId: string, host: string, stats?: TaskRequestStats): Promise<TaskServer> {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    if (stats) {
      const now = Date.now();
      stats.requests += 1;
      stats.firstRequestAt ??= now;
      stats.lastRequestAt = now;
    }
    if (stats) {
      const method = req.method ?? 'GET';
      const inflight = (stats.inflight ??= {});
      inflight[method] = (inflight[method] ?? 0) + 1;
      res.once('close', () => {
        inflight[method] = (inflight[method] ?? 1) - 1;
      });
    }
    const drop = DROP_FIRST_PATH.exec(req.url ?? '');
    if (drop) {
      const token = drop[1]!;
      const arrivals = (dropFirstSeen.get(token) ?? 0) + 1;
      dropFirstSeen.set(token, arrivals);
      if (arrivals === 1) {
        req.on('end', () => req.socket.destroy());
        req.resume();
        return;
      }
    }
    req.resume();
    if (HEADERS_PATH.test(req.url ?? '')) return echoHeaders(req, res, taskId);
    const delayMs = slowPathDelay(req.url);
    if (delayMs === null) return answer(res, taskId);
    const timer = setTimeout(() => answer(res, taskId), delayMs);
    res.on('close', () => clearTimeout(timer));
  });
  const sockets = new WebSocketServer({ server });
  sockets.on('connection', (socket) => socket.on('message', (data) => socket.send(`${taskId}:${String(data)}`)));
  await listen(server, 0, host);
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => {
      if (stats) stats.cutOff = { ...(stats.inflight ?? {}) };
      for (const socket of sockets.clients) socket.terminate();
      sockets.close();
      return closeServer(server);
    },
  };
}
