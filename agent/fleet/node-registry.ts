/**
 * The fleet of routing nodes, in Redis: each agent writes a heartbeat to the
 * hash `<prefix>nodes` (field: its node id); a node whose heartbeat is older
 * than the TTL stops counting. Drain-before-kill waits for the live nodes.
 * An agent that stops says so in its entry (stoppedAt): it no longer counts,
 * but the fleet view still shows the node, whose data plane goes on routing
 * with the last table, until the entry is cleaned up like a dead one.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NodeHeartbeat, NodeInfo } from '../core/fleet-view.js';

export type { NodeInfo };

/** What an agent tells about its node at each heartbeat. */
export type NodeDescription = Omit<NodeInfo, 'nodeId' | 'heartbeatAt' | 'startedAt' | 'heartbeatMs' | 'stoppedAt'>;

/** A node as the registry reads it: its heartbeat, and whether it still counts. */
export type FleetNode = NodeHeartbeat;

export class NodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly nodeId: string,
    private readonly describe: () => NodeDescription,
    private readonly log: Logger,
    readonly heartbeatMs = 2_000,
    readonly ttlMs = NODE_TTL_MS,
  ) {}

  get key(): string {
    return `${this.prefix}nodes`;
  }

  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
  }

  /** Stops counting at once, rather than after the TTL; the entry says the agent stopped. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const now = Date.now();
    await this.redis.hset(this.key, this.nodeId, JSON.stringify({ ...this.info(now), stoppedAt: now })).catch(() => undefined);
  }

  private info(now: number): NodeInfo {
    return { nodeId: this.nodeId, heartbeatAt: now, startedAt: this.startedAt, heartbeatMs: this.heartbeatMs, ...this.describe() };
  }

  private async beat(): Promise<void> {
    const info = this.info(Date.now());
    try {
      await this.redis.hset(this.key, this.nodeId, JSON.stringify(info));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat not written');
    }
  }

  /** Every registered node, live or not; entries long dead are removed. */
  fleet(now = Date.now()): Promise<FleetNode[]> {
    return readFleet(this.redis, this.prefix, now, this.ttlMs);
  }
}

export const NODE_TTL_MS = 10_000;

/** The fleet as anyone sees it (agents, the CLI): every registered node, live or not; entries long dead are removed. */
export async function readFleet(redis: Redis, prefix: string, now = Date.now(), ttlMs = NODE_TTL_MS): Promise<FleetNode[]> {
  const key = `${prefix}nodes`;
  const entries = await redis.hgetall(key);
  const nodes: FleetNode[] = [];
  for (const [id, raw] of Object.entries(entries)) {
    let info: NodeInfo;
    try {
      info = JSON.parse(raw) as NodeInfo;
    } catch {
      continue;
    }
    const age = now - Number(info.heartbeatAt);
    if (age > ttlMs * 30) {
      await redis.hdel(key, id).catch(() => undefined);
      continue;
    }
    nodes.push({ ...info, nodeId: id, live: age <= ttlMs && info.stoppedAt === undefined });
  }
  return nodes.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
}
