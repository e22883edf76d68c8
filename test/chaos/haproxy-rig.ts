/**
 * One HAProxy routing node under continuous load, wired as in production:
 * HAProxy in master-worker mode on what `haproxy-conf` wrote (with a TCP port
 * range), the agent as its own process (so it can be killed -9) with
 * --haproxy-socket and --haproxy-conf-dir, and a Marathon simulator. An HTTP
 * app with health checks takes keep-alive load, a TCP echo app takes a load
 * of short connections; faults are done to the node and the loads count
 * what clients saw.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startHaproxy, type HaproxyProcess } from '../helpers/haproxy-node.js';
import { startLoad, type LoadReport, type RunningLoad } from '../helpers/load.js';
import { EchoServers, exchange, freePortRange, startTcpLoad, type TcpLoad } from '../helpers/tcp-echo.js';
import { HEALTH_CHECK, REQUEST_PATH } from './rig.js';

export const HAPROXY_HOST = 'svc.chaos.test';
const API_TOKEN = 'chaos-api-token-of-some-length';

export class HaproxyChaosRig {
  agent: AgentProcess;
  private http: RunningLoad | null = null;
  private tcp: TcpLoad | null = null;

  private constructor(
    readonly marathon: MarathonSim,
    readonly haproxy: HaproxyProcess,
    readonly tcpPort: number,
    private readonly echoes: EchoServers,
  ) {
    this.agent = this.spawn();
  }

  static async start(): Promise<HaproxyChaosRig> {
    const marathon = await MarathonSim.start({ instances: 2, heartbeatMs: 500 });
    const base = await freePortRange(2);
    const haproxy = await startHaproxy({ backendPool: 4, tcpPorts: `${base}-${base + 1}`, tcpBackendPool: 2 });
    const echoes = new EchoServers();
    const rig = new HaproxyChaosRig(marathon, haproxy, base, echoes);
    await marathon.deploy({ id: '/svc', instances: 3, labels: { 'edgeroute.vhosts': HAPROXY_HOST }, healthChecks: [HEALTH_CHECK] });
    const ports = [await echoes.start('echo-0'), await echoes.start('echo-1')];
    await marathon.deploy({ id: '/echo', instances: 2, backendPorts: ports, labels: { 'edgeroute.tcpPort': String(base) } });
    await rig.waitHealthy();
    return rig;
  }

  private spawn(): AgentProcess {
    return spawnAgent(
      ['--marathon', this.marathon.urls.join(','), '--haproxy-socket', this.haproxy.socket, '--haproxy-conf-dir', this.haproxy.dir, '--stall-timeout', '2', '--node-id', 'chaos-haproxy'],
      { EDGEROUTE_API_TOKEN: API_TOKEN },
    );
  }

  agentUrl(): string | null {
    const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*agent API listening/.exec(this.agent.output());
    return match?.[1] ?? null;
  }

  respawnAgent(): void {
    this.agent = this.spawn();
  }

  /** /readyz's status and reasons. */
  async readyz(): Promise<{ status: number; reasons: string[] }> {
    const url = this.agentUrl();
    if (!url) return { status: 0, reasons: ['no agent API yet'] };
    const reply = await httpGet(`${url}/readyz`).catch(() => null);
    if (!reply) return { status: 0, reasons: ['agent API unreachable'] };
    return { status: reply.status, reasons: reply.status === 200 ? [] : ((JSON.parse(reply.body) as { reasons?: string[] }).reasons ?? []) };
  }

  masterPid(): number {
    return Number(readFileSync(join(this.haproxy.dir, 'run', 'haproxy.pid'), 'utf8').trim());
  }

  /** Servers of the pools as `backend/name#id` (a server deleted and added again gets a new id). */
  async servers(): Promise<string[]> {
    return (await this.haproxy.runtime('show servers state'))
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => /^(tcp-)?pool-\d+$/.test(f[1] ?? ''))
      .map((f) => `${f[1]}/${f[3]}#${f[2]}`)
      .sort();
  }

  /** The agent ready, every running task of /svc answering, the echo app reachable. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitFor('the agent to be ready', async () => ((await this.readyz()).status === 200 ? true : undefined), timeoutMs, 100);
    const wanted = this.marathon.tasks('/svc').filter((t) => t.state === 'TASK_RUNNING').map((t) => t.id);
    await waitFor(
      `${HAPROXY_HOST} served by its ${wanted.length} tasks`,
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < wanted.length * 6; i++) {
          const reply = await httpGet(`${this.haproxy.publicUrl}/`, { host: HAPROXY_HOST });
          if (reply.status === 200) seen.add(reply.body);
        }
        return wanted.every((id) => seen.has(id)) ? true : undefined;
      },
      timeoutMs,
      200,
    );
    await waitFor('the echo app reachable', async () => ((await exchange(this.tcpPort).catch(() => '')).startsWith('echo-') ? true : undefined), timeoutMs, 200);
  }

  startLoad(): void {
    this.http = startLoad(this.haproxy.publicUrl, HAPROXY_HOST, { concurrency: 4, path: REQUEST_PATH });
    this.tcp = startTcpLoad(this.tcpPort, 2);
  }

  sent(): number {
    return (this.http?.sent() ?? 0) + (this.tcp?.sent() ?? 0);
  }

  async stopLoad(): Promise<{ http: LoadReport | null; tcp: { sent: number; failures: string[] } | null }> {
    const [http, tcp] = await Promise.all([this.http?.stop() ?? null, this.tcp?.stop() ?? null]);
    this.http = null;
    this.tcp = null;
    return { http, tcp };
  }

  async stop(): Promise<void> {
    await this.stopLoad().catch(() => undefined);
    await this.agent.stop().catch(() => undefined);
    await this.haproxy.stop();
    await this.marathon.stop();
    await this.echoes.stopAll();
  }
}
