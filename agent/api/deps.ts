/** What the API reads from the running agent. */
import type { RedisPolicies } from '../adapters/redis-policies.js';
import type { NodeRegistry } from '../adapters/node-registry.js';
import type { AgentFeed } from '../feed.js';
import type { AgentMetrics } from '../metrics.js';
import type { Reconciler } from '../reconciler.js';

export interface ApiDeps {
  readonly reconciler: Reconciler;
  readonly feed: AgentFeed;
  readonly metrics: AgentMetrics;
  /** Null when the agent has no Redis. */
  readonly policies: RedisPolicies | null;
  /** The fleet of routing nodes; null without Redis. */
  readonly nodes: NodeRegistry | null;
  readonly token: string;
  marathonUrl(): string;
  marathonConnected(): boolean;
  redisConnected(): boolean | null;
  /** /readyz fails when the last successful sync is older than this and the event stream is down. */
  readonly readyMaxAgeMs: number;
}
