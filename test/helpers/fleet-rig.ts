/**
 * A fleet as production runs one, on loopback: one Marathon simulator, Redis
 * with Sentinel (a master, a replica, three sentinels: real redis-server
 * processes) and four routing nodes, each a data plane with its own agent:
 *
 *   edge-1, edge-2  nginx; agent and plugin find Redis through the sentinels
 *   edge-3          nginx; agent and plugin reach Redis through a TCP proxy
 *                   that follows the master (as a managed Redis endpoint
 *                   does) and that the test can cut: a split from Redis
 *   edge-4          HAProxy; its agent finds Redis through the sentinels and
 *                   hands the policies to HAProxy's Lua action
 *
 * For the fleet test (test/integration/fleet.test.ts) and the fleet bench
 * (bench/fleet.ts). Everything it starts it stops, by PID, in stop().
 */
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import type { AgentOptions } from '../../agent/run-agent.js';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { readFleet, type FleetNode as RegisteredNode } from '../../agent/fleet/node-registry.js';
import { parseSentinels, type RedisTarget } from '../../agent/fleet/redis-target.js';
import { RedisPolicies } from '../../agent/fleet/redis-policies.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startCuttableProxy, type CuttableProxy } from './cuttable-proxy.js';
import { HAPROXY_RIG, NGINX_RIG, startRigNode, type RigNode } from './data-plane-rig.js';
import { startLoad, type RunningLoad } from './load.js';
import { startSentinelRig, type SentinelRig } from './redis-sentinel.js';

const BIN = join(PROJECT_ROOT, 'bin', 'edgeroute.js');
export const PREFIX = 'edgeroute:';

export interface FleetNode extends RigNode {
  readonly id: string;
  /** The proxy this node reaches Redis through (cut it to split the node from Redis); null: through the sentinels. */
  readonly proxy: CuttableProxy | null;
}

export interface FleetRigOptions {
  /** Marathon's bare SSE heartbeat, ms (default 500). */
  readonly marathonHeartbeatMs?: number;
  /** nginx's policy reads, s (nginx-conf --policy-refresh; default 0.5). */
  readonly policyRefreshSeconds?: number;
  /** More agent options, for every node. */
  readonly agent?: Partial<AgentOptions>;
}

export interface FleetRig {
  readonly marathon: MarathonSim;
  readonly redis: SentinelRig;
  readonly nodes: readonly FleetNode[];
  /** The node whose Redis goes through a cuttable proxy. */
  readonly splitNode: FleetNode;
  /** `--redis-sentinels ... --redis-master ...`, for the CLI. */
  readonly redisFlags: readonly string[];
  /** The agents' Sentinel target. */
  readonly sentinelTarget: RedisTarget;
  /** Runs `use` on a fresh client of the master the sentinels name now. */
  onMaster<T>(use: (redis: Redis) => Promise<T>): Promise<T>;
  /** Stores a policy on the master and PUBLISHes the change, as `edgeroute policy set` does. */
  setPolicy(app: string, policy: object): Promise<void>;
  /** The fleet as the master holds it (heartbeats). */
  fleet(): Promise<RegisteredNode[]>;
  /** Continuous load on every node (in node order), through its public listener. */
  loadEverywhere(host: string, opts?: Parameters<typeof startLoad>[2]): RunningLoad[];
  /** `edgeroute ARGS --marathon ... --redis-sentinels ... --redis-master ...`, as ops run it. */
  cli(args: readonly string[], timeoutMs?: number): ReturnType<typeof execa>;
  stop(): Promise<void>;
}

export async function startFleetRig(opts: FleetRigOptions = {}): Promise<FleetRig> {
  const stoppers: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    stoppers.length = 0;
  };
  try {
    const redis = await startSentinelRig();
    stoppers.push(() => redis.stop());
    const marathon = await MarathonSim.start({ heartbeatMs: opts.marathonHeartbeatMs ?? 500 });
    stoppers.push(() => marathon.stop());
    const proxy = await startCuttableProxy(() => redis.masterPort());
    stoppers.push(() => proxy.stop());
    const sentinels = parseSentinels(redis.sentinelList);
    const plugin = { sentinels, master: redis.master, user: null, password: null, sentinelPassword: null };
    const sentinelTarget: RedisTarget = { kind: 'sentinel', sentinels, master: redis.master, user: null, password: null, sentinelPassword: null, tls: false, caFile: null };
    const layout = [
      { id: 'edge-1', rig: NGINX_RIG, proxied: false },
      { id: 'edge-2', rig: NGINX_RIG, proxied: false },
      { id: 'edge-3', rig: NGINX_RIG, proxied: true },
      { id: 'edge-4', rig: HAPROXY_RIG, proxied: false },
    ];
    const nodes = await Promise.all(
      layout.map(async ({ id, rig, proxied }) => {
        const node = await startRigNode(
          rig,
          marathon.url,
          { listen: '127.0.0.1:0', nodeId: id, redis: proxied ? proxy.url : sentinelTarget, ...opts.agent },
          { policyRefreshSeconds: opts.policyRefreshSeconds ?? 0.5, ...(proxied ? { policyRedis: proxy.url } : { policySentinel: plugin }) },
        );
        stoppers.push(() => node.stop());
        return Object.assign(node, { id, proxy: proxied ? proxy : null }) as FleetNode;
      }),
    );
    const onMaster = async <T>(use: (client: Redis) => Promise<T>): Promise<T> => {
      const client = new Redis({ host: '127.0.0.1', port: await redis.masterPort(), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return await use(client);
      } finally {
        client.disconnect();
      }
    };
    const redisFlags = ['--redis-sentinels', redis.sentinelList, '--redis-master', redis.master];
    return {
      marathon,
      redis,
      nodes,
      splitNode: nodes.find((n) => n.proxy !== null) as FleetNode,
      redisFlags,
      sentinelTarget,
      onMaster,
      setPolicy: (app, policy) => onMaster((client) => new RedisPolicies(client, PREFIX).set(app, JSON.stringify(policy))),
      fleet: () => onMaster((client) => readFleet(client, PREFIX)),
      loadEverywhere: (host, loadOpts) => nodes.map((node) => startLoad(node.publicUrl, host, loadOpts)),
      cli: (args, timeoutMs = 120_000) =>
        execa(process.execPath, [BIN, ...args, '--marathon', marathon.url, ...redisFlags], { reject: false, all: true, timeout: timeoutMs, env: { EDGEROUTE_ADMIN_TOKEN: '' } }),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
