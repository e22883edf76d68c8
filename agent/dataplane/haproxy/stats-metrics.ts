/**
 * Per app and version metrics of an HAProxy node, from HAProxy's own counters
 * (`show stat`), on the agent's /metrics. The adapter says which app and
 * version each backend serves and which task each server is; the counters of
 * a backend go to its app and version, those of a server to its task too.
 *
 * `edgeroute_requests_total{app,version,status}` has the name and labels of
 * the nginx plugin's (responses by status class, 1xx-5xx, of HTTP backends);
 * what only HAProxy counts is `edgeroute_haproxy_*`, with `mode` (http, tcp),
 * and `edgeroute_haproxy_server_*` per task. HAProxy is read when Prometheus
 * scrapes (at most once a second, on a connection of its own, so the control
 * loop never waits for it, and a reload's new worker is the one read); its counters become monotonic Prometheus counters
 * in ../monotonic-counters.ts.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import type { TrafficCounters, TrafficReading, TrafficSource } from '../data-plane.js';
import { MonotonicCounters, type CounterReading } from '../monotonic-counters.js';
import { LATENCY_BOUNDS, LATENCY_BUCKETS, LATENCY_TABLE, parseLatencyTable } from './latency-histogram.js';
import { HaproxyRuntime } from './runtime-client.js';
import { parseInfoGeneration } from './runtime-plan.js';

/** What a backend serves, as the adapter knows it. */
export interface BackendOwner {
  readonly app: string;
  readonly version: string;
  /** The backend's mode: HTTP routing by host, or a TCP port. */
  readonly mode: 'http' | 'tcp';
}

/** The adapter's side: labels for the rows of `show stat`. */
export interface StatsLabels {
  /** Backend → what it serves, for the backends apps hold now. */
  backendOwners(): ReadonlyMap<string, BackendOwner>;
  /** The task a server of a backend is; null when the agent did not add it. */
  serverTask(backend: string, server: string): string | null;
}

/** A `show stat` column read as a counter or a gauge; `scale` turns HAProxy's unit into Prometheus's. */
interface Field {
  readonly column: string;
  /** The metric's name after edgeroute_haproxy_ (or edgeroute_haproxy_server_). */
  readonly name: string;
  readonly help: string;
  readonly scale?: number;
  /** For gauges: how two rows with the same labels combine. */
  readonly combine?: 'sum' | 'max';
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const RESPONSE_COLUMNS = STATUS_CLASSES.map((c) => `hrsp_${c}`);

const COUNTERS: readonly Field[] = [
  { column: 'stot', name: 'sessions_total', help: 'Sessions (TCP connections; HTTP requests) HAProxy sent to the app, by mode' },
  { column: 'bin', name: 'bytes_in_total', help: 'Bytes from clients to the app' },
  { column: 'bout', name: 'bytes_out_total', help: 'Bytes from the app to clients' },
  { column: 'econ', name: 'connection_errors_total', help: 'Connections to a task that failed' },
  { column: 'eresp', name: 'response_errors_total', help: 'Responses from a task that failed (aborted, invalid)' },
  { column: 'wretr', name: 'retries_total', help: 'Connection attempts retried' },
  { column: 'wredis', name: 'redispatches_total', help: 'Requests sent to another task after a failed connection' },
];

const GAUGES: readonly Field[] = [
  { column: 'scur', name: 'current_sessions', help: 'Sessions open now', combine: 'sum' },
  { column: 'qcur', name: 'current_queue', help: 'Requests waiting for a free connection to a task', combine: 'sum' },
  { column: 'qtime', name: 'queue_time_average_seconds', help: 'Average time in the queue over the last 1024 requests', scale: 1e-3, combine: 'max' },
  { column: 'ctime', name: 'connect_time_average_seconds', help: 'Average connect time over the last 1024 requests', scale: 1e-3, combine: 'max' },
  { column: 'rtime', name: 'response_time_average_seconds', help: 'Average response time (to the first byte) over the last 1024 requests (HTTP)', scale: 1e-3, combine: 'max' },
  { column: 'ttime', name: 'total_time_average_seconds', help: 'Average total session time over the last 1024 requests', scale: 1e-3, combine: 'max' },
];

/**
 * `edgeroute_request_duration_seconds{app,version}` as the nginx plugin
 * names it, from the histogram haproxy.cfg counts (latency-histogram.ts), so
 * one histogram_quantile query reads nodes of both kinds: `_bucket` (per
 * bound, cumulative, and +Inf) and `_count`; no `_sum`, since HAProxy adds
 * no latencies up. A metric of its own (prom-client's Histogram only
 * observes): it reads the same reading as the others.
 */
class LatencyHistogramMetric {
  readonly name = 'edgeroute_request_duration_seconds';
  readonly help = "Time to a task's response headers, by app and version (HAProxy: counted by haproxy.cfg; no _sum)";
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(private readonly series: () => Promise<readonly TrafficCounters[]>) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> }> {
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
    for (const s of await this.series()) {
      if (!s.latencyBuckets) continue;
      const labels = { app: s.app, version: s.version };
      let cumulative = 0;
      LATENCY_BOUNDS.forEach((bound, i) => {
        cumulative += s.latencyBuckets![i] ?? 0;
        values.push({ value: cumulative, labels: { ...labels, le: bound }, metricName: `${this.name}_bucket` });
      });
      cumulative += s.latencyBuckets[LATENCY_BOUNDS.length] ?? 0;
      values.push({ value: cumulative, labels: { ...labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      values.push({ value: cumulative, labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    // Nothing kept: every scrape reads the counters.
  }
}

/** One row of `show stat` with the labels it counts under. */
export interface LabelledRow {
  /** backend, or backend/server. */
  readonly source: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly server: boolean;
  readonly mode: 'http' | 'tcp';
  /** The columns, by name. */
  readonly columns: ReadonlyMap<string, number>;
}

/** A backend no app holds: what it counted belongs to nobody. */
export interface UnownedRow {
  readonly source: string;
  readonly columns: ReadonlyMap<string, number>;
}

/**
 * `show stat` CSV → the rows of backends apps hold, and of their servers,
 * with their labels, and those of backends no app holds.
 */
export function labelStatRows(csv: string, labels: StatsLabels): { rows: LabelledRow[]; unowned: UnownedRow[] } {
  const lines = csv.split('\n');
  const header = lines[0]?.replace(/^# /, '').split(',') ?? [];
  const px = header.indexOf('pxname');
  const sv = header.indexOf('svname');
  if (px < 0 || sv < 0) throw new Error('show stat answered without its CSV header');
  const wanted = [...new Set(['iid', ...RESPONSE_COLUMNS, ...COUNTERS.map((f) => f.column), ...GAUGES.map((f) => f.column)])].map((c) => [c, header.indexOf(c)] as const);
  const owners = labels.backendOwners();
  const rows: LabelledRow[] = [];
  const unowned: UnownedRow[] = [];
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const backend = f[px];
    const name = f[sv];
    if (!backend || !name || name === 'FRONTEND') continue;
    const server = name !== 'BACKEND';
    const source = server ? `${backend}/${name}` : backend;
    const owner = owners.get(backend);
    const task = owner && server ? labels.serverTask(backend, name) : null;
    const columns = new Map<string, number>();
    for (const [column, at] of wanted) columns.set(column, at < 0 ? 0 : Number(f[at] || 0));
    if (!owner || (server && task === null)) {
      if (!server) unowned.push({ source, columns });
      continue;
    }
    const base = { app: owner.app, version: owner.version };
    rows.push({ source, server, mode: owner.mode, columns, labels: server ? { ...base, task: task! } : base });
  }
  return { rows, unowned };
}

export interface HaproxyStatsMetricsOptions {
  /** The admin stats socket; the metrics keep a connection of their own. */
  readonly socket: string;
  /** The adapter, for the labels. */
  readonly labels: StatsLabels;
  readonly registry: Registry;
  readonly log: Logger;
  /** A scrape within this long of the last reading reuses it. */
  readonly minIntervalMs?: number;
  /** How long a reading may take before the scrape goes on without it. */
  readonly timeoutMs?: number;
}

/** The counter columns of a reading, in order: responses by class, then COUNTERS (then the latency buckets, latency-histogram.ts). */
const COUNTER_COLUMNS = [...RESPONSE_COLUMNS, ...COUNTERS.map((f) => f.column)];
const NO_BUCKETS: readonly number[] = new Array<number>(LATENCY_BUCKETS).fill(0);

/** A row's counters, and a backend's latency buckets (a server's are zeros: the histogram is per backend). */
function counterValues(columns: ReadonlyMap<string, number>, histogram: ReadonlyMap<number, readonly number[]> | null, server: boolean): number[] {
  const buckets = (!server && histogram?.get(columns.get('iid') ?? -1)) || NO_BUCKETS;
  return [...COUNTER_COLUMNS.map((c) => columns.get(c) ?? 0), ...buckets];
}

/**
 * The metrics, registered on the agent's registry; read from HAProxy at
 * scrape time, and by the traffic sampler (readTraffic), which shares the
 * readings: responses by class per app version, the latency histogram
 * haproxy.cfg keeps (latency-histogram.ts), and HAProxy's average response
 * time (rtime: to the server's response headers, over its last 1024 requests).
 */
export class HaproxyStatsMetrics implements TrafficSource {
  private readonly backendCounters = new MonotonicCounters(COUNTER_COLUMNS.length + LATENCY_BUCKETS);
  private readonly serverCounters = new MonotonicCounters(COUNTER_COLUMNS.length + LATENCY_BUCKETS);
  /** Whether the last reading found the latency table (a haproxy.cfg rendered before it has none: means only). */
  private histogram = false;
  private reading: Promise<void> | null = null;
  /** Who started the reading under way: a scrape's is shared by the scrape's metrics, the sampler's is not fresh enough for a scrape. */
  private readingFor: 'scrape' | 'traffic' | null = null;
  private readAt = -Infinity;
  private failing = false;
  private closed = false;
  private traffic: TrafficCounters[] = [];
  private readonly up: Gauge;
  private readonly requests: Counter<string>;
  private readonly serverResponses: Counter<string>;
  private readonly counters: Array<{ backend: Counter<string>; server: Counter<string> }>;
  private readonly gauges: Array<{ backend: Gauge<string>; server: Gauge<string> }>;

  constructor(private readonly opts: HaproxyStatsMetricsOptions) {
    const registers = [opts.registry];
    // Every metric reads the same reading: the first one a scrape collects takes it.
    const read = () => this.read();
    const backendLabels = ['app', 'version', 'mode'];
    const serverLabels = ['app', 'version', 'mode', 'task'];
    this.up = new Gauge({ name: 'edgeroute_haproxy_stats_up', help: "1 when the last reading of HAProxy's counters (show stat) succeeded", registers, collect: read });
    this.requests = new Counter({ name: 'edgeroute_requests_total', help: 'Requests by app, version and status class (HAProxy: responses of the app\'s HTTP backends)', labelNames: ['app', 'version', 'status'], registers, collect: read });
    this.serverResponses = new Counter({ name: 'edgeroute_haproxy_server_responses_total', help: 'HTTP responses by task and status class', labelNames: ['app', 'version', 'task', 'status'], registers, collect: read });
    this.counters = COUNTERS.map((f) => ({
      backend: new Counter({ name: `edgeroute_haproxy_${f.name}`, help: `${f.help}, by app and version`, labelNames: backendLabels, registers, collect: read }),
      server: new Counter({ name: `edgeroute_haproxy_server_${f.name}`, help: `${f.help}, by task`, labelNames: serverLabels, registers, collect: read }),
    }));
    opts.registry.registerMetric(
      new LatencyHistogramMetric(async () => {
        await read();
        return this.traffic;
      }) as unknown as Metric,
    );
    this.gauges = GAUGES.map((f) => ({
      backend: new Gauge({ name: `edgeroute_haproxy_${f.name}`, help: `${f.help}, by app and version`, labelNames: backendLabels, registers, collect: read }),
      server: new Gauge({ name: `edgeroute_haproxy_server_${f.name}`, help: `${f.help}, by task`, labelNames: serverLabels, registers, collect: read }),
    }));
  }

  /** The HTTP backends' counters by app and version, from a reading at most minIntervalMs old. */
  async readTraffic(): Promise<TrafficReading> {
    if (this.closed) throw new Error("HAProxy's counters are no longer read (the agent stops)");
    await (this.reading ?? this.begin('traffic'));
    if (this.failing) throw new Error("cannot read HAProxy's counters (show stat)");
    return { latencyBounds: this.histogram ? LATENCY_BOUNDS : null, series: this.traffic };
  }

  /** Stops reading HAProxy: later scrapes keep the last values. */
  close(): void {
    this.closed = true;
  }

  /** One reading for every metric of a scrape (and of scrapes less than minIntervalMs apart). */
  private async read(): Promise<void> {
    if (this.reading && this.readingFor === 'scrape') return this.reading;
    // The sampler's reading was taken before this scrape asked: one reading at a time, then the scrape's own.
    if (this.reading) await this.reading;
    if (this.reading) return this.reading;
    if (this.closed) return;
    if (Date.now() - this.readAt < (this.opts.minIntervalMs ?? 1_000)) return;
    return this.begin('scrape');
  }

  /** One reading at a time, so the counters take them in order; only a scrape's counts for minIntervalMs. */
  private begin(what: 'scrape' | 'traffic'): Promise<void> {
    this.readingFor = what;
    this.reading = this.readNow().finally(() => {
      if (what === 'scrape') this.readAt = Date.now();
      this.reading = null;
      this.readingFor = null;
    });
    return this.reading;
  }

  private async readNow(): Promise<void> {
    let info: string;
    let stat: string;
    let table: string;
    // A connection per reading: one kept open would stay with the worker
    // that accepted it, which a reload replaces (and which would not exit
    // while the connection lasts).
    const runtime = new HaproxyRuntime(this.opts.socket, this.opts.timeoutMs ?? 3_000);
    try {
      // Backends and servers only (types 2 and 4): not the frontends.
      [info, stat, table] = (await runtime.run(['show info', 'show stat -1 6 -1', `show table ${LATENCY_TABLE}`])) as [string, string, string];
    } catch (err) {
      // The last values stay: a counter never goes down because HAProxy did not answer once.
      this.up.set(0);
      if (!this.failing) this.opts.log.warn({ err: (err as Error).message }, "cannot read HAProxy's counters for /metrics");
      this.failing = true;
      return;
    } finally {
      runtime.close();
    }
    if (this.failing) this.opts.log.info("HAProxy's counters can be read again");
    this.failing = false;
    this.up.set(1);
    const histogram = parseLatencyTable(table);
    this.histogram = histogram !== null;
    this.publish(parseInfoGeneration(info), labelStatRows(stat, this.opts.labels), histogram);
  }

  private publish(generation: string | null, { rows, unowned }: { rows: LabelledRow[]; unowned: UnownedRow[] }, histogram: ReadonlyMap<number, readonly number[]> | null): void {
    // Rows with the same labels (two backends of one version) add up.
    const groups = new Map<string, { labels: Record<string, string>; server: boolean; rows: LabelledRow[] }>();
    const readings: { backend: CounterReading[]; server: CounterReading[] } = { backend: unowned.map((u) => ({ source: u.source, owner: null, values: counterValues(u.columns, histogram, false) })), server: [] };
    for (const row of rows) {
      const labels = { ...row.labels, mode: row.mode };
      const key = JSON.stringify(labels);
      const group = groups.get(key) ?? { labels, server: row.server, rows: [] as LabelledRow[] };
      group.rows.push(row);
      groups.set(key, group);
      (row.server ? readings.server : readings.backend).push({ source: row.source, owner: key, values: counterValues(row.columns, histogram, row.server) });
    }
    const totals = { backend: this.backendCounters.add(generation, readings.backend), server: this.serverCounters.add(generation, readings.server) };

    const traffic: TrafficCounters[] = [];
    for (const [key, { labels, server, rows: same }] of groups) {
      const total = totals.backend.get(key);
      if (server || labels.mode !== 'http' || !total) continue;
      const rtime = Math.max(...same.map((r) => r.columns.get('rtime') ?? 0)) / 1000;
      const latencyBuckets = histogram ? total.slice(COUNTER_COLUMNS.length) : null;
      traffic.push({ app: labels.app as string, version: labels.version as string, responses: total.slice(0, STATUS_CLASSES.length), latencyBuckets, latencySeconds: null, recentMeanSeconds: rtime });
    }
    this.traffic = traffic;

    for (const metric of [this.requests, this.serverResponses, ...this.counters.flatMap((c) => [c.backend, c.server]), ...this.gauges.flatMap((g) => [g.backend, g.server])]) metric.reset();
    for (const [key, { labels, server, rows: same }] of groups) {
      const total = (server ? totals.server : totals.backend).get(key);
      if (total) {
        if (labels.mode === 'http') {
          const { mode: _mode, ...byVersion } = labels;
          STATUS_CLASSES.forEach((status, i) => (server ? this.serverResponses : this.requests).inc({ ...byVersion, status }, total[i]!));
        }
        COUNTERS.forEach((_, i) => (server ? this.counters[i]!.server : this.counters[i]!.backend).inc(labels, total[RESPONSE_COLUMNS.length + i]!));
      }
      GAUGES.forEach((f, i) => {
        const values = same.map((r) => (r.columns.get(f.column) ?? 0) * (f.scale ?? 1));
        const value = f.combine === 'max' ? Math.max(...values) : values.reduce((a, b) => a + b, 0);
        (server ? this.gauges[i]!.server : this.gauges[i]!.backend).set(labels, value);
      });
    }
  }
}
