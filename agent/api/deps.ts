/** What the API reads from the running agent. */
import type { RedisPolicies } from '../fleet/redis-policies.js';
import type { NodeRegistry } from '../fleet/node-registry.js';
import type { AgentFeed } from '../observe/feed.js';
import type { AgentMetrics } from '../observe/metrics.js';
import type { Reconciler } from '../control/reconciler.js';
import type { OperationContext, Progress } from '../operations/operation-context.js';
import type { DrainAck, DrainMark } from '../fleet/redis-drains.js';
import type { CertificateView } from '../certs/cert-watcher.js';
import type { AcmeNameView } from '../acme/acme-manager.js';
import type { TrafficSampler } from '../observe/traffic-sampler.js';
import type { PublishedAppTraffic } from '../fleet/traffic-board.js';
import type { RolloutRecord } from '../operations/rollout.js';

/** A drain mark with every node's acknowledgement, as /v1/drains lists it. */
export interface DrainView extends DrainMark {
  readonly acks: Readonly<Record<string, DrainAck>>;
}

export interface ApiDeps {
  readonly reconciler: Reconciler;
  readonly feed: AgentFeed;
  readonly metrics: AgentMetrics;
  /** Null when the agent has no Redis. */
  readonly policies: RedisPolicies | null;
  /** The fleet of routing nodes; null without Redis. */
  readonly nodes: NodeRegistry | null;
  readonly token: string;
  /** Reads need the token too (`--api-reads token`), except the probes and the dashboard's static files. */
  readonly readsNeedToken: boolean;
  /** Builds the context drain, kill, scale, restart and rollout run in; null without Redis. */
  readonly operations: ((io: { report(progress: Progress): void; signal: AbortSignal }) => OperationContext) | null;
  /** The current drain marks with their acks; null without Redis. */
  readonly drains: (() => Promise<DrainView[]>) | null;
  /** The --certs folder's certificates, without key material; null without --certs. */
  readonly certificates?: (() => readonly CertificateView[]) | null;
  /** The ACME names (edgeroute.acme=true) with their certificate's dates and failures, without key material; null without --acme-directory. */
  readonly acme?: (() => readonly AcmeNameView[]) | null;
  /** The release of edgeroute's part of the data plane (the Lua plugin) it reported; null until it answered. */
  readonly pluginVersion?: () => string | null;
  /** Which data plane this node runs ("nginx"). */
  readonly dataPlane?: string;
  /** This routing node's id in the fleet. */
  readonly nodeId?: string;
  /** The traffic sampler: per-version requests, 5xx and latency of this node; null/absent: none. */
  readonly traffic?: TrafficSampler | null;
  /** One app's traffic as each of these nodes published it in Redis; null without Redis. */
  readonly fleetTraffic?: ((app: string, nodeIds: readonly string[]) => Promise<PublishedAppTraffic[]>) | null;
  /** The rollout records of these apps; null without Redis. */
  readonly rollouts?: ((apps: readonly string[]) => Promise<RolloutRecord[]>) | null;
  /** This node as the fleet view compares the others with it: its group and split policies. */
  readonly fleetSelf?: () => { readonly group: string | null; readonly policies: { readonly count: number; readonly digest: string } | null };
  marathonUrl(): string;
  marathonConnected(): boolean;
  redisConnected(): boolean | null;
  /** /readyz fails when the last successful sync is older than this and the event stream is down. */
  readonly readyMaxAgeMs: number;
}
