/**
 * One routing node under continuous load, wired as in production: nginx with
 * the plugin (two workers, snapshot file, Redis for policies), the agent as
 * its own process (so it can be killed -9), a Redis, and a Marathon
 * simulator with a standby (for leader failovers). Faults are done to it;
 * the load counts what clients saw.
 */
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startLoad, type LoadReport, type RunningLoad } from '../helpers/load.js';

export const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };

/** The hosts the load runs against: a plain app with health checks, and a two-version app split by a policy. */
export const HOSTS = { plain: 'svc.chaos.test', split: 'shop.chaos.test' } as const;

/** Requests take this long at the backend, so some are always in flight. */
export const REQUEST_PATH = '/slow/20';

export interface ChaosRigOptions {
  /** Seconds of silence on the event stream before the agent reconnects. */
  readonly stallTimeoutSeconds: number;
}

export class ChaosRig {
  agent: AgentProcess;
  private loads: RunningLoad[] = [];

  private constructor(
    readonly redis: RedisServer,
    readonly marathon: MarathonSim,
    readonly nginx: NginxNode,
    private readonly opts: ChaosRigOptions,
  ) {
    this.agent = this.spawn();
  }

  static async start(opts: ChaosRigOptions): Promise<ChaosRig> {
    const redis = await startRedis();
    const marathon = await MarathonSim.start({ instances: 2, heartbeatMs: 500 });
    const nginx = await startNginxNode({ workerProcesses: 2, redis: redis.url, daemon: true });
    const rig = new ChaosRig(redis, marathon, nginx, opts);
    await marathon.deploy({ id: '/svc', instances: 3, labels: { 'edgeroute.vhosts': HOSTS.plain }, healthChecks: [HEALTH_CHECK] });
    await marathon.deploy({ id: '/shop-v1', instances: 2, labels: { 'edgeroute.vhosts': HOSTS.split, 'edgeroute.app': 'shop', 'edgeroute.version': 'v1' } });
    await marathon.deploy({ id: '/shop-v2', instances: 2, labels: { 'edgeroute.vhosts': HOSTS.split, 'edgeroute.app': 'shop', 'edgeroute.version': 'v2' } });
    const client = new Redis(redis.url);
    await client.set('edgeroute:policy:shop', JSON.stringify({ default: 'v1', rules: [{ name: 'half', match: { percentage: { value: 50, by: 'header:X-User' } }, version: 'v2' }] }));
    await client.publish('edgeroute:policy-changed', 'shop');
    client.disconnect();
    await rig.waitHealthy();
    return rig;
  }

  private spawn(): AgentProcess {
    return spawnAgent(
      [
        '--marathon',
        this.marathon.urls.join(','),
        '--nginx-admin',
        this.nginx.adminUrl,
        '--redis',
        this.redis.url,
        '--snapshot-file',
        this.nginx.snapshotFile ?? '',
        '--stall-timeout',
        String(this.opts.stallTimeoutSeconds),
        '--node-id',
        'chaos',
      ],
      { EDGEROUTE_ADMIN_TOKEN: this.nginx.adminToken },
    );
  }

  /** The agent's API, once it said where it listens. */
  agentUrl(): string | null {
    const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*agent API listening/.exec(this.agent.output());
    return match?.[1] ?? null;
  }

  async restartAgent(): Promise<void> {
    await this.agent.stop();
    this.agent = this.spawn();
  }

  /** A new agent process, after the old one was killed. */
  respawnAgent(): void {
    this.agent = this.spawn();
  }

  /** Every task of every app routed, the agent ready. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      'the agent to be ready',
      async () => {
        const url = this.agentUrl();
        if (!url) return undefined;
        const reply = await httpGet(`${url}/readyz`).catch(() => null);
        return reply?.status === 200 ? true : undefined;
      },
      timeoutMs,
      100,
    );
    for (const [host, apps] of [
      [HOSTS.plain, ['/svc']],
      [HOSTS.split, ['/shop-v1', '/shop-v2']],
    ] as const) {
      const wanted = apps.flatMap((app) => this.marathon.tasks(app).filter((t) => t.state === 'TASK_RUNNING').map((t) => t.id));
      await waitFor(
        `${host} to be served by its ${wanted.length} tasks`,
        async () => {
          const seen = new Set<string>();
          for (let i = 0; i < wanted.length * 6; i++) {
            const reply = await httpGet(`${this.nginx.publicUrl}/`, { host, headers: { 'X-User': `u${i}` } });
            if (reply.status === 200) seen.add(reply.body);
          }
          return wanted.every((id) => seen.has(id)) ? true : undefined;
        },
        timeoutMs,
        200,
      );
    }
  }

  startLoad(): void {
    this.loads = [
      startLoad(this.nginx.publicUrl, HOSTS.plain, { concurrency: 4, path: REQUEST_PATH }),
      startLoad(this.nginx.publicUrl, HOSTS.split, { concurrency: 2, path: REQUEST_PATH, headers: { 'X-User': 'chaos' } }),
    ];
  }

  sent(): number {
    return this.loads.reduce((n, l) => n + l.sent(), 0);
  }

  async stopLoad(): Promise<LoadReport[]> {
    const reports = await Promise.all(this.loads.map((l) => l.stop()));
    this.loads = [];
    return reports;
  }

  /** Lines of nginx's error log that say a worker died. */
  workerDeaths(): string[] {
    return this.nginx.process
      .errorLog()
      .split('\n')
      .filter((line) => /exited on signal|exited with (fatal )?code [1-9]/.test(line));
  }

  async stop(): Promise<void> {
    await this.stopLoad().catch(() => undefined);
    await this.agent.stop().catch(() => undefined);
    await this.nginx.process.stop();
    await this.marathon.stop();
    await this.redis.stop();
  }
}
