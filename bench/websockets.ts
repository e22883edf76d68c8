/**
 * Memory of idle WebSockets through one routing node: 10,000 connections
 * opened through nginx (two workers) to echo backends in two child processes,
 * each proven by one echo, then left idle. nginx's workers' RSS (and the
 * backends', separately) before, while they are idle, and after they close;
 * KB per connection from the difference.
 *
 * Descriptors: 10,000 upgraded connections are 20,000 in nginx (client side
 * and backend side). This machine's hard limit is 20,000 a process and nginx
 * may not raise it (setrlimit is refused even to root here), so the node has
 * two workers, `reuseport` on its public listener so the kernel spreads the
 * connections evenly, and worker_connections to match
 * (bench/lib/edge-node.ts). Figures are the two workers' sums. Client
 * sockets come from 127.0.0.1 to 127.0.0.4 so no one source address runs
 * short of ephemeral ports.
 */
import { execa, type ResultPromise } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { childScript } from './lib/child-script.js';
import { WebSocket } from 'ws';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startEdgeNode, type EdgeNode } from './lib/edge-node.js';
import { pushTable } from './lib/push.js';

const HOST = 'ws.bench';

const SOURCE_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
const WORKERS = 2;
/** 10,000 WebSockets over 2 workers are about 10,000 descriptors each; below the 20,000 limit. */
const WORKER_CONNECTIONS = 16_000;

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

interface WsBackend {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startWsBackend(): Promise<WsBackend> {
  const child: ResultPromise = execa(process.execPath, [childScript('ws-backend')], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit', buffer: false, reject: false });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('the WebSocket backend did not start within 10 s')), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n')[0];
      if (text.includes('\n') && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    void child.then((r) => reject(new Error(`the WebSocket backend exited: ${r.exitCode}`)));
  });
  return {
    port,
    pid: child.pid ?? 0,
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** Opens one WebSocket through nginx and waits for the echo of one message. */
function openOne(node: EdgeNode, i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${node.publicPort}/socket/${i}`, {
      headers: { host: HOST },
      localAddress: SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length],
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`connection ${i}: no echo within 15 s`));
    }, 15_000);
    ws.once('open', () => ws.send(`hello ${i}`));
    ws.once('message', (data) => {
      clearTimeout(timer);
      if (String(data) !== `hello ${i}`) reject(new Error(`connection ${i}: echo ${String(data)}`));
      else resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connection ${i}: ${err.message}`));
    });
  });
}

export const websockets: Benchmark = {
  name: 'websockets',
  description: 'memory of 10,000 idle WebSockets through one nginx node (2 workers) and the backends, KB per connection',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const count = ctx.smoke ? 50 : 10_000;
    const concurrency = ctx.smoke ? 10 : 200;
    const idleSeconds = ctx.smoke ? 0.5 : 10;
    const backends = await Promise.all([startWsBackend(), startWsBackend()]);
    let node: EdgeNode | null = null;
    const sockets: WebSocket[] = [];
    try {
      node = await startEdgeNode({ workerProcesses: WORKERS, workerConnections: WORKER_CONNECTIONS, reuseport: true });
      const edge = node;
      await pushTable(edge.adminUrl, edge.adminToken, [{ id: 'ws', vhosts: [HOST], versions: { stable: backends.map((b) => b.port) } }]);
      await waitFor('the app to route', async () => ((await httpGet(`${edge.publicUrl}/`, { host: HOST })).status === 200 ? true : undefined));
      const workers = edge.process.workerPids();
      if (workers.length !== WORKERS) throw new Error(`${workers.length} nginx workers, not ${WORKERS}`);
      const workerRss = () => workers.map(rssKb).reduce((a, b) => a + b, 0);
      const workerFds = () => workers.map(openFiles);
      const totalFds = () => workerFds().reduce((a, b) => a + b, 0);
      const fdsAtStart = totalFds();
      // Warm: a few WebSockets opened and closed, so the workers' first-use allocations are in the baseline.
      for (const ws of await Promise.all(Array.from({ length: 20 }, (_, i) => openOne(edge, i)))) ws.terminate();
      await waitFor('the warm-up sockets to close', () => (totalFds() <= fdsAtStart ? true : undefined), 10_000, 50);
      await new Promise((r) => setTimeout(r, 500));
      const backendRss = () => backends.map((b) => rssKb(b.pid)).reduce((a, b) => a + b, 0);
      const before = { workerRssKb: workerRss(), workerFds: workerFds(), backendsRssKb: backendRss(), clientRssKb: Math.round(process.memoryUsage().rss / 1024) };
      ctx.progress(`before: nginx workers ${before.workerRssKb} kB, ${before.workerFds.join('+')} fds; backends ${before.backendsRssKb} kB`);

      const deadline = Date.now() + (ctx.smoke ? 30_000 : 180_000);
      const openStarted = performance.now();
      let next = 0;
      const lane = async () => {
        while (next < count) {
          if (Date.now() > deadline) throw new Error(`opening ${count} WebSockets took longer than the deadline (${sockets.length} open)`);
          const i = next++;
          sockets.push(await openOne(edge, i));
          if (sockets.length % 2000 === 0) ctx.progress(`${sockets.length} open`);
        }
      };
      try {
        await Promise.all(Array.from({ length: concurrency }, lane));
      } catch (err) {
        const log = edge.process
          .errorLog()
          .split('\n')
          .filter((line) => /\[(alert|crit|error|emerg)\]/.test(line))
          .slice(-3);
        throw new Error(`${(err as Error).message} after ${sockets.length} open; nginx workers ${workerFds().join('+')} fds; nginx error log: ${log.join(' | ') || 'nothing'}`);
      }
      const openSeconds = (performance.now() - openStarted) / 1000;
      ctx.progress(`${count} WebSockets open and echoed in ${round(openSeconds, 1)} s; idle for ${idleSeconds} s`);
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      if (sockets.some((ws) => ws.readyState !== WebSocket.OPEN)) throw new Error(`${sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length} WebSockets closed while idle`);
      const idle = { workerRssKb: workerRss(), workerFds: workerFds(), backendsRssKb: backendRss(), clientRssKb: Math.round(process.memoryUsage().rss / 1024) };
      ctx.progress(`idle: nginx workers ${idle.workerRssKb} kB, ${idle.workerFds.join('+')} fds; backends ${idle.backendsRssKb} kB`);
      // Still alive after the idle period: one echo on a sample.
      const sample = sockets.filter((_, i) => i % Math.max(1, Math.floor(count / 100)) === 0);
      await Promise.all(
        sample.map(
          (ws, i) =>
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error('no echo after the idle period')), 10_000);
              ws.once('message', () => {
                clearTimeout(timer);
                resolve();
              });
              ws.send(`still ${i}`);
            }),
        ),
      );

      for (const ws of sockets.splice(0)) ws.terminate();
      await waitFor('nginx to close them', () => (totalFds() <= fdsAtStart + 2 ? true : undefined), 30_000, 100);
      await new Promise((r) => setTimeout(r, 1000));
      const closed = { workerRssKb: workerRss(), workerFds: workerFds(), backendsRssKb: backendRss() };
      ctx.progress(`closed: nginx workers ${closed.workerRssKb} kB, backends ${closed.backendsRssKb} kB`);

      const perConnection = (a: number, b: number) => round((b - a) / count, 2);
      const results = {
        setup: {
          connections: count,
          nginxWorkers: WORKERS,
          workerConnections: WORKER_CONNECTIONS,
          publicListener: 'reuseport',
          openFilesLimit: 'inherited (20,000 here)',
          backends: 'two Node processes (ws 8, no compression), echo',
          clientSourceAddresses: SOURCE_ADDRESSES,
          openConcurrency: concurrency,
          idleSeconds,
          echoedAfterIdle: sample.length,
        },
        openSeconds: round(openSeconds, 2),
        before,
        idle,
        closed,
        nginxWorker: {
          kbPerConnection: perConnection(before.workerRssKb, idle.workerRssKb),
          fdsPerConnection: round((sum(idle.workerFds) - sum(before.workerFds)) / count, 3),
          mbForAll: round((idle.workerRssKb - before.workerRssKb) / 1024, 1),
          kbKeptAfterClose: closed.workerRssKb - before.workerRssKb,
        },
        backends: { kbPerConnection: perConnection(before.backendsRssKb, idle.backendsRssKb), mbForAll: round((idle.backendsRssKb - before.backendsRssKb) / 1024, 1) },
        clientProcess: { kbPerConnection: perConnection(before.clientRssKb, idle.clientRssKb) },
      };
      return {
        summary: `${count} idle WebSockets: nginx workers +${results.nginxWorker.mbForAll} MB, ${results.nginxWorker.kbPerConnection} KB per connection (${results.nginxWorker.fdsPerConnection} fds each, ${idle.workerFds.join('+')} per worker; ${closed.workerRssKb - before.workerRssKb} kB kept after they closed); backends ${results.backends.kbPerConnection} KB per connection; opened in ${results.openSeconds} s`,
        targets: [],
        results,
      };
    } finally {
      for (const ws of sockets) ws.terminate();
      if (node) await node.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  },
};
