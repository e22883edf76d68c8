/**
 * Idle race: a task that closes an idle kept-alive connection just as the
 * router sends a request on it. The task closes each idle connection exactly
 * TASK_IDLE_MS after its last answer; one kept-alive client sends requests
 * that far apart (± 2 ms, spread evenly), so they reach the router as the
 * task closes. Each data plane runs with its --upstream-idle-timeout above
 * the task's (the race) and below it (the router closes first), and counts
 * the requests that did not get a 200. A second pattern starts with a burst
 * (10 requests at once, so 10 connections to the task), then sends one
 * request every 150 ms: the extra connections idle past the task's timeout
 * while the router still holds them.
 */
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { HaproxyDataPlane } from '../agent/dataplane/haproxy/haproxy-data-plane.js';
import { httpRequest } from '../agent/sandbox/http-get.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { startHaproxy } from '../test/helpers/haproxy-node.js';
import { atMost, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { appRoute, pushTable, type BenchApp } from './lib/push.js';

const TASK_IDLE_MS = 300;
const HOST = 'race.bench';
/** Above the task's idle timeout, and below it (HAProxy purges every eighth of it: a lone idle connection closed within 62-94 ms). */
const ROUTER_IDLE = { above: 60, below: 0.25 } as const;

/** Closes each connection TASK_IDLE_MS after its last answer, to the millisecond (Node's keepAliveTimeout is up to a second late). */
async function startRacingTask(): Promise<{ port: number; connections: () => number; stop(): Promise<void> }> {
  let connections = 0;
  const timers = new Map<Socket, NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    clearTimeout(timers.get(req.socket));
    req.resume();
    req.on('end', () => {
      res.end('ok');
      res.on('finish', () => timers.set(req.socket, setTimeout(() => req.socket.destroy(), TASK_IDLE_MS)));
    });
  });
  server.keepAliveTimeout = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.on('close', () => clearTimeout(timers.get(socket)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One request on the client's kept-alive connection: true when it got a 200. */
async function send(url: string, method: string, agent: Agent): Promise<boolean> {
  const reply = await httpRequest(`${url}/`, { host: HOST, method, agent, body: method === 'POST' ? 'order=42' : undefined }).catch(() => null);
  return reply?.status === 200;
}

/** `count` requests, each TASK_IDLE_MS ± 2 ms after the previous answer (busy-waited to the end: timers are late by a millisecond or more). */
async function race(url: string, method: string, count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let lost = 0;
  try {
    if (!(await send(url, method, agent))) lost++;
    for (let i = 0; i < count; i++) {
      const wait = TASK_IDLE_MS - 2 + 4 * ((i * 0.618034) % 1);
      const start = performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait - 3)));
      while (performance.now() - start < wait) {
        // Spin the last milliseconds.
      }
      if (!(await send(url, method, agent))) lost++;
    }
  } finally {
    agent.destroy();
  }
  return lost;
}

/** `rounds` times: BURST requests at once, then 20 one after another, 148-152 ms apart. */
async function burstThenTrickle(url: string, rounds: number): Promise<{ sent: number; lost: number }> {
  const BURST = 10;
  const burst = new Agent({ keepAlive: true, maxSockets: BURST });
  const trickle = new Agent({ keepAlive: true, maxSockets: 1 });
  let sent = 0;
  let lost = 0;
  const post = async (agent: Agent) => {
    sent++;
    if (!(await send(url, 'POST', agent))) lost++;
  };
  try {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(Array.from({ length: BURST }, () => post(burst)));
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 148 + 4 * ((i * 0.618034) % 1)));
        await post(trickle);
      }
    }
  } finally {
    burst.destroy();
    trickle.destroy();
  }
  return { sent, lost };
}

interface Router {
  readonly url: string;
  stop(): Promise<void>;
}

async function nginxRouter(app: BenchApp, idleSeconds: number): Promise<Router> {
  const nginx = await startNginxNode({ workerProcesses: 1, errorLogLevel: 'warn', upstreamIdleTimeoutSeconds: idleSeconds });
  await pushTable(nginx.adminUrl, nginx.adminToken, [app]);
  return { url: nginx.publicUrl, stop: () => nginx.process.stop() };
}

async function haproxyRouter(app: BenchApp, idleSeconds: number): Promise<Router> {
  const haproxy = await startHaproxy({ upstreamIdleTimeoutSeconds: idleSeconds });
  const plane = new HaproxyDataPlane({ socket: haproxy.socket }, pino({ level: 'silent' }));
  const applied = await plane.apply({ version: 'race-1', base: null, apps: { [app.id]: appRoute(app) } });
  const stop = async () => {
    await plane.close();
    await haproxy.stop();
  };
  if (!applied.ok) {
    await stop();
    throw new Error(`HAProxy refused the table: ${applied.error}`);
  }
  return { url: haproxy.publicUrl, stop };
}

export const idleRace: Benchmark = {
  name: 'idle-race',
  description: "requests lost to a task closing an idle kept-alive connection as they come, with the router's idle timeout above and below the task's",
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const count = ctx.smoke ? 4 : 100;
    const burstRounds = ctx.smoke ? 1 : 8;
    const task = await startRacingTask();
    const app: BenchApp = { id: 'race', vhosts: [HOST], versions: { stable: [task.port] } };
    const results: Record<string, { routerIdleSeconds: number; lost: Record<string, number>; sent: number; burst: { sent: number; lost: number } }> = {};
    try {
      for (const [plane, start] of [['nginx', nginxRouter], ['haproxy', haproxyRouter]] as const) {
        for (const [where, idleSeconds] of Object.entries(ROUTER_IDLE)) {
          const router = await start(app, idleSeconds);
          const lost: Record<string, number> = {};
          let burst: { sent: number; lost: number };
          try {
            for (const method of ['GET', 'POST']) lost[method] = await race(router.url, method, count);
            burst = await burstThenTrickle(router.url, burstRounds);
          } finally {
            await router.stop();
          }
          results[`${plane}_${where}`] = { routerIdleSeconds: idleSeconds, lost, sent: count + 1, burst };
          ctx.progress(`${plane}, idle timeout ${idleSeconds} s (${where} the task's ${TASK_IDLE_MS} ms): lost ${lost['GET']} GETs, ${lost['POST']} POSTs of ${count + 1} each; after bursts ${burst.lost} POSTs of ${burst.sent}`);
        }
      }
    } finally {
      await task.stop();
    }
    const row = (key: string) => `GET ${results[key]!.lost['GET']}, POST ${results[key]!.lost['POST']} (after bursts ${results[key]!.burst.lost} of ${results[key]!.burst.sent})`;
    const lostBelow = (plane: string) => (results[`${plane}_below`]!.lost['GET'] ?? 0) + (results[`${plane}_below`]!.lost['POST'] ?? 0) + results[`${plane}_below`]!.burst.lost;
    return {
      summary: `lost of ${count + 1} each, task idle ${TASK_IDLE_MS} ms: nginx above ${row('nginx_above')}, below ${row('nginx_below')}; haproxy above ${row('haproxy_above')}, below ${row('haproxy_below')}; task connections ${task.connections()}`,
      targets: ctx.smoke ? [] : [atMost('nginx lost, idle timeout below the task (trickle and bursts)', lostBelow('nginx'), 0), atMost('haproxy lost, idle timeout below the task (trickle and bursts)', lostBelow('haproxy'), 0)],
      results: { setup: { taskIdleMs: TASK_IDLE_MS, requestsPerMethod: count + 1, spacingMs: `${TASK_IDLE_MS} ± 2` }, ...results },
    };
  },
};
