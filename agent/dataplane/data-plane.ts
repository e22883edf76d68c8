/**
 * What the control loop needs from the proxy that routes the requests: the
 * port between them. The reconciler decides what to apply and when; an
 * adapter (`nginx/`, later `haproxy/`) knows how to say it to its proxy.
 * Nothing here names one.
 */
import type { AppRoute, RoutingTable } from '../core/routing-table.js';

/** A routing table to apply: the whole table, or the changes since the one the data plane holds. */
export interface TableChange {
  readonly version: string;
  /** The version the change builds on; null replaces the whole table. */
  readonly base: string | null;
  /** Changed apps; null removes an app. */
  readonly apps: Readonly<Record<string, AppRoute | null>>;
}

/** `bytes`: how much was sent to the data plane. */
export type ApplyResult =
  | {
      readonly ok: true;
      readonly bytes: number;
      /** The data plane's generation that took the change (a new one means it restarted); null when it does not say. */
      readonly generation: string | null;
    }
  | {
      readonly ok: false;
      readonly bytes: number;
      /** It holds another table than `base` (it restarted, or another writer): apply the whole table. */
      readonly otherBase: boolean;
      /** What the data plane answered. */
      readonly error: string;
      /** The refusal in a sentence, for the sync's error. */
      readonly message: string;
    };

/** What the data plane holds now. */
export interface DataPlaneStatus {
  /** The table version it routes with; null: none. */
  readonly version: string | null;
  /** Changes when it restarts; null when it does not say. */
  readonly generation: string | null;
}

/** Requests the data plane is still serving, per backend (task id). */
export interface InflightReport {
  /** The table version the counts were taken on. */
  readonly version: string | null;
  /** True when every part of the data plane (each nginx worker) reported on that version, so the counts are complete. */
  readonly settled: boolean;
  readonly backends: ReadonlyMap<string, number>;
}

export interface DataPlane {
  /** How logs name it ("nginx"). */
  readonly name: string;
  /** Applies a whole table or its changes. */
  apply(change: TableChange): Promise<ApplyResult>;
  /** Asks what it holds now; throws when it cannot be reached. */
  status(): Promise<DataPlaneStatus>;
  /** In-flight requests to these tasks (for drain acknowledgements). */
  inflight(taskIds: readonly string[]): Promise<InflightReport>;
  /** The release of edgeroute's part inside the data plane (the Lua plugin); null until it answered. */
  readonly release: string | null;
  /** The split policies it applies, by multi-version app: md5 of the policy text (null: none); null or absent when it does not say. */
  readonly policyDigests?: ReadonlyMap<string, string | null> | null;
  /** Told after each sync that the data plane holds this table (the nginx adapter keeps its snapshot file). */
  holds(table: RoutingTable): void;
  /** Writes what is pending (on stop). */
  close(): Promise<void>;
}

/** The counters of one app version, as the data plane counts them since it started. */
export interface TrafficCounters {
  readonly app: string;
  readonly version: string;
  /** Responses by status class, 1xx to 5xx; they only go up (the adapter smooths restarts). */
  readonly responses: readonly number[];
  /** Requests per latency bucket (one per bound of the reading, then one above the last), only going up; null without a histogram. */
  readonly latencyBuckets: readonly number[] | null;
  /** Time spent serving them, seconds, only going up; null when the data plane does not add it up. */
  readonly latencySeconds: number | null;
  /** The data plane's own recent mean latency, seconds (HAProxy's average over its last 1024 requests); null when it keeps none. */
  readonly recentMeanSeconds: number | null;
}

/** One reading of every app version's counters. */
export interface TrafficReading {
  /** The latency histogram's upper bounds, seconds; null: the data plane keeps no histogram. */
  readonly latencyBounds: readonly number[] | null;
  readonly series: readonly TrafficCounters[];
}

/** Where the agent's traffic sampler reads the requests the data plane served (nginx's plugin counters, HAProxy's stats). */
export interface TrafficSource {
  readTraffic(): Promise<TrafficReading>;
}
