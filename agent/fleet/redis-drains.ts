/**
 * Drain marks in Redis: the announcement that a task is about to be killed,
 * and each routing node's acknowledgement that it no longer routes to it.
 *
 *   <prefix>drain:tasks          sorted set: task id, scored by when its mark expires (ms)
 *   <prefix>drain:<taskId>       hash: "mark" → DrainMark JSON, "ack:<nodeId>" → DrainAck JSON;
 *                                expires with the mark, so a forgotten drain cannot last forever
 *   <prefix>drain:changed        pub/sub channel, message = comma-separated task ids (a hint;
 *                                agents also poll)
 *
 * Marathon task ids always contain a "." ("app.uuid"), so no task key collides with the index.
 */
import type { Redis } from 'ioredis';
import { execChecked } from './batch-replies.js';

export interface DrainMark {
  readonly taskId: string;
  /** The Marathon app the task belongs to. */
  readonly appId: string;
  /** What the drain is for: drain, kill, scale, restart, rollout. */
  readonly operation: string;
  /** Who asked (user@host), for the state and the logs. */
  readonly by: string;
  readonly at: number;
  readonly expiresAt: number;
}

export interface DrainAck {
  /** When the node last confirmed (ms). */
  readonly at: number;
  /** The table version its data plane routes with; it does not route to the task. */
  readonly tableVersion: string | null;
  /** Requests to the task still being served by this node's data plane. */
  readonly inflight: number;
  /** True when the whole data plane (every nginx worker) reported on that table, so `inflight` is complete. */
  readonly settled: boolean;
}

export class DrainBoard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  get indexKey(): string {
    return `${this.prefix}drain:tasks`;
  }

  get channel(): string {
    return `${this.prefix}drain:changed`;
  }

  key(taskId: string): string {
    return `${this.prefix}drain:${taskId}`;
  }

  /** Marks the tasks draining (replacing earlier marks and their acks), then tells the agents. */
  async mark(marks: readonly DrainMark[]): Promise<void> {
    if (marks.length === 0) return;
    const tx = this.redis.multi();
    for (const mark of marks) {
      const key = this.key(mark.taskId);
      tx.del(key);
      tx.hset(key, 'mark', JSON.stringify(mark));
      tx.pexpireat(key, mark.expiresAt);
      tx.zadd(this.indexKey, mark.expiresAt, mark.taskId);
    }
    await execChecked(tx);
    await this.redis.publish(this.channel, marks.map((m) => m.taskId).join(','));
  }

  /** Lifts the marks: the tasks may be published again. */
  async unmark(taskIds: readonly string[]): Promise<void> {
    if (taskIds.length === 0) return;
    const tx = this.redis.multi();
    for (const taskId of taskIds) tx.del(this.key(taskId));
    tx.zrem(this.indexKey, ...taskIds);
    await execChecked(tx);
    await this.redis.publish(this.channel, taskIds.join(','));
  }

  /** Every mark not yet expired, by task id; expired index entries are dropped on the way. */
  async active(now = Date.now()): Promise<Map<string, DrainMark>> {
    // Expired entries leave the index in the same round trip (their hashes expired by TTL).
    const listing = await this.redis.pipeline().zrangebyscore(this.indexKey, now, '+inf').zremrangebyscore(this.indexKey, '-inf', now - 1).exec();
    const [err, listed] = listing?.[0] ?? [null, []];
    if (err) throw err;
    const ids = listed as string[];
    const marks = new Map<string, DrainMark>();
    if (ids.length === 0) return marks;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.key(id), 'mark');
    const replies = (await pipeline.exec()) ?? [];
    ids.forEach((id, i) => {
      const mark = parseMark(replies[i]?.[1]);
      if (mark && mark.taskId === id && mark.expiresAt > now) marks.set(id, mark);
    });
    return marks;
  }

  /**
   * Records this node's acknowledgements; a mark lifted meanwhile is not
   * recreated. Throws when one was not written (a failover under way), so
   * the watcher acknowledges again.
   */
  async ack(nodeId: string, acks: ReadonlyMap<string, DrainAck>, marks: ReadonlyMap<string, DrainMark>): Promise<void> {
    if (acks.size === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [taskId, ack] of acks) {
      const mark = marks.get(taskId);
      if (!mark) continue;
      // HSET on a key that expired or was lifted would bring it back without its mark; a script checks first.
      pipeline.eval(ACK_SCRIPT, 1, this.key(taskId), `ack:${nodeId}`, JSON.stringify(ack), String(mark.at));
    }
    await execChecked(pipeline);
  }

  /** Acknowledgements by task id, then by node id; only those made after the task's current mark. */
  async acks(taskIds: readonly string[]): Promise<Map<string, { mark: DrainMark | null; acks: Map<string, DrainAck> }>> {
    const result = new Map<string, { mark: DrainMark | null; acks: Map<string, DrainAck> }>();
    if (taskIds.length === 0) return result;
    const pipeline = this.redis.pipeline();
    for (const id of taskIds) pipeline.hgetall(this.key(id));
    const replies = (await pipeline.exec()) ?? [];
    taskIds.forEach((id, i) => {
      const fields = (replies[i]?.[1] ?? {}) as Record<string, string>;
      const mark = parseMark(fields.mark);
      const acks = new Map<string, DrainAck>();
      for (const [field, raw] of Object.entries(fields)) {
        if (!field.startsWith('ack:')) continue;
        const ack = parseAck(raw);
        if (ack && mark && ack.at >= mark.at) acks.set(field.slice('ack:'.length), ack);
      }
      result.set(id, { mark, acks });
    });
    return result;
  }

  /** The active marks, each with every node's acknowledgement (as /v1/drains lists them). */
  async activeWithAcks(): Promise<Array<DrainMark & { readonly acks: Readonly<Record<string, DrainAck>> }>> {
    const marks = await this.active();
    const acks = await this.acks([...marks.keys()]);
    return [...marks.values()].map((mark) => ({ ...mark, acks: Object.fromEntries(acks.get(mark.taskId)?.acks ?? []) }));
  }
}

/** KEYS[1] drain key; ARGV: field, ack JSON, the mark's `at` the ack answers. */
const ACK_SCRIPT = `
local mark = redis.call('HGET', KEYS[1], 'mark')
if not mark then return 0 end
local ok, decoded = pcall(cjson.decode, mark)
if not ok or type(decoded) ~= 'table' or decoded.at ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

function parseMark(raw: unknown): DrainMark | null {
  if (typeof raw !== 'string') return null;
  try {
    const value = JSON.parse(raw) as Partial<DrainMark>;
    if (typeof value.taskId !== 'string' || typeof value.at !== 'number' || typeof value.expiresAt !== 'number') return null;
    return {
      taskId: value.taskId,
      appId: typeof value.appId === 'string' ? value.appId : '',
      operation: typeof value.operation === 'string' ? value.operation : 'drain',
      by: typeof value.by === 'string' ? value.by : 'unknown',
      at: value.at,
      expiresAt: value.expiresAt,
    };
  } catch {
    return null;
  }
}

function parseAck(raw: string): DrainAck | null {
  try {
    const value = JSON.parse(raw) as Partial<DrainAck>;
    if (typeof value.at !== 'number' || typeof value.inflight !== 'number') return null;
    return { at: value.at, tableVersion: typeof value.tableVersion === 'string' ? value.tableVersion : null, inflight: value.inflight, settled: value.settled === true };
  } catch {
    return null;
  }
}
