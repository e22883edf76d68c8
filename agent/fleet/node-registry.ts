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

export interface NodeInfo {
  readonly nodeId: string;
  readonly heartbeatAt: number;
  readonly startedAt: number;
  /** The table this node's data plane holds. */
  readonly tableVersion: string | null;
  readonly apiUrl: string | null;
  /** Which data plane the node drives ('nginx', 'haproxy'); absent from agents older than the field. */
  readonly dataPlane?: string;
  /** The routing group it routes (--group); null: apps without one. Absent from older agents. */
  readonly group?: string | null;
  /** How often the node beats, ms (absent from older agents). */
  readonly heartbeatMs?: number;
  /** When its data plane last took a routing change (ms); null: not since the agent started. */
  readonly lastPushAt?: number | null;
  /** The split policies its data plane applies: how many, and a digest of them all; null when it does not say. */
  readonly policies?: { readonly count: number; readonly digest: string } | null;
  /** Set by an agent that stopped (ms): the node no longer counts. */
  readonly stoppedAt?: number;
}

/** What an agent tells about its node at each heartbeat. */
export type NodeDescription = Omit<NodeInfo, 'nodeId' | 'heartbeatAt' | 'startedAt' | 'heartbeatMs' | 'stoppedAt'>;

export interface FleetNode extends NodeInfo {
  readonly live: boolean;
}

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
