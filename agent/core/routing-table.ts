/**
 * The routing table: a pure function of the Marathon snapshot, the resolved
 * host addresses and the agent's config. Same input, deep-equal output.
 */
import type { BackendState, RememberedHealth } from './lifecycle.js';
import type { InputProblem, MarathonApp, MarathonSnapshot } from './marathon-types.js';
import { RoutingMemo } from './routing-memo.js';
import type { RouteSettings } from './route-settings.js';

export { RoutingMemo } from './routing-memo.js';

export interface Backend {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

export interface VersionRoute {
  readonly marathonAppId: string;
  readonly backends: readonly Backend[];
}

export interface AppRoute {
  readonly id: string;
  /** Host names the app holds (at one path or more). */
  readonly vhosts: readonly string[];
  /**
   * Host → the path prefixes the app holds there; absent when it holds every
   * host at "/" only, as apps without edgeroute.path do.
   */
  readonly paths?: Readonly<Record<string, readonly string[]>>;
  /** Per-route proxy settings; absent when all are defaults. */
  readonly settings?: RouteSettings;
  /**
   * edgeroute.tcpPort: HAProxy nodes route this TCP port to the app's default
   * version; absent when the app has none. An app with only a TCP port has no
   * vhosts (nginx nodes leave it out).
   */
  readonly tcpPort?: number;
  /**
   * edgeroute.tcpBind: HAProxy nodes listen for tcpPort on this address only
   * (IPv4, or IPv6 without brackets); absent: on their TCP listen hosts.
   */
  readonly tcpBind?: string;
  readonly defaultVersion: string;
  readonly versions: Readonly<Record<string, VersionRoute>>;
  /** Content hash of this app's route; the plugin rebuilds an app only when it changes. */
  readonly hash: string;
}

export interface RoutingTable {
  /** Content hash of the whole table. */
  readonly version: string;
  readonly apps: Readonly<Record<string, AppRoute>>;
}

export interface RoutingConfig {
  /** --group: route only apps in one of these groups (a comma list; "*": every app); null routes only apps without a group. */
  readonly group: string | null;
  /** --marathon-lb-labels: an app without edgeroute.* labels is read by its marathon-lb labels (HAPROXY_*). */
  readonly marathonLbLabels?: boolean;
  /** For apps without edgeroute.publishDelaySeconds. */
  readonly defaultPublishDelaySeconds: number;
  /** For apps without edgeroute.warmupSeconds. */
  readonly defaultWarmupSeconds: number;
  readonly warmupAggression: number;
  /** While a backend warms up, its weight changes at most this often. */
  readonly warmupStepMs: number;
}

export const DEFAULT_ROUTING_CONFIG: RoutingConfig = {
  group: null,
  defaultPublishDelaySeconds: 0,
  defaultWarmupSeconds: 0,
  warmupAggression: 1,
  warmupStepMs: 1000,
};

export interface RoutingInput {
  readonly snapshot: MarathonSnapshot;
  readonly config: RoutingConfig;
  /** Host name → IP address, for tasks whose `host` is a name (nginx peers must be IPs). */
  readonly hostAddresses: ReadonlyMap<string, string>;
  /** Remembered health by task id, for tasks Marathon reports no health result for. */
  readonly healthMemory: ReadonlyMap<string, RememberedHealth>;
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** Task id → why it is drained: announced to be killed, so out of every upstream. */
  readonly drains?: ReadonlyMap<string, string>;
  /**
   * Optional, for speed: which apps changed since the memo's previous
   * computation. Without it the memo compares every app object of the
   * snapshot (10,000 at scale) to find the changed ones; the result is the
   * same either way.
   */
  readonly changes?: SnapshotChanges;
}

/**
 * `snapshot` is `since` with only these apps added or replaced (by id; null:
 * removed), and `hostAddresses` is the same map object as then unless an
 * address in it changed. Ignored unless `since` is the snapshot of the memo's
 * previous computation.
 */
export interface SnapshotChanges {
  readonly since: MarathonSnapshot;
  readonly apps: ReadonlyMap<string, MarathonApp | null>;
}

/** One task of a routed app, routed or not, and why. */
export interface BackendStatus {
  readonly app: string;
  readonly version: string;
  readonly marathonAppId: string;
  readonly taskId: string;
  readonly address: string | null;
  readonly port: number | null;
  readonly state: BackendState;
  readonly reason: string;
  readonly weight: number;
  readonly baseWeight: number;
  readonly publishedAt: number | null;
}

export interface RoutingResult {
  readonly table: RoutingTable;
  /** What changed against `changes.since`, the table of the previous computation with the same memo. */
  readonly changes: {
    readonly since: RoutingTable | null;
    readonly upserts: readonly AppRoute[];
    readonly removals: readonly string[];
    /** For each upserted or removed app, its route in `since` (null when new). */
    readonly replaced: ReadonlyMap<string, AppRoute | null>;
  };
  readonly problems: readonly InputProblem[];
  readonly backends: readonly BackendStatus[];
  /** The tasks of one logical app, with states and reasons. */
  statusesOf(appId: string): readonly BackendStatus[];
  /** Health Marathon reported in this snapshot, to remember: (task id, health), each task once. */
  readonly observations: ReadonlyArray<readonly [string, RememberedHealth]>;
  /** When the table changes by the clock alone (a delay ends, a warm-up steps); null if never. */
  readonly nextChangeAt: number | null;
}

/**
 * Computes the routing table. With a memo kept by the caller, only the apps
 * whose Marathon objects changed (or whose verdicts depend on the clock or on
 * remembered health) are judged again; the result is the same as computing
 * from scratch, which is what happens without a memo.
 */
export function computeRoutingTable(input: RoutingInput, memo: RoutingMemo = new RoutingMemo()): RoutingResult {
  return memo.apply(input);
}
