/**
 * Traffic per app and version, as numbers a person compares: requests per
 * second, share of the app's requests, 5xx ratio and latency (p50/p99 from a
 * histogram, or a mean where the data plane keeps no histogram), and the
 * flags that say a version does clearly worse than the app's default version.
 * Pure: windows of counts in, summaries out; the fleet's sum is the same sum.
 */

/** What one version served over a window (one node, or the fleet added up). */
export interface TrafficWindow {
  /** Responses counted in the window. */
  readonly requests: number;
  /** Responses with a 5xx status. */
  readonly errors: number;
  /** requests / the window's length; for a fleet, the nodes' rates added. */
  readonly requestsPerSecond: number;
  /** Latency histogram: a count per bound of the reading's bounds, then one above the last; null without one. */
  readonly buckets: readonly number[] | null;
  /** The mean latency in seconds (all a data plane without a histogram, HAProxy, keeps); null when unknown. */
  readonly meanSeconds: number | null;
}

export interface VersionTraffic {
  readonly version: string;
  readonly requestsPerSecond: number;
  /** Of the app's requests per second, 0-1; null when the app served none. */
  readonly share: number | null;
  /** 5xx / requests, 0-1; null without requests. */
  readonly errorRatio: number | null;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  /** Mean latency (all HAProxy nodes keep: no histogram there). */
  readonly meanMs: number | null;
  readonly requests: number;
  readonly errors: number;
  /** Why this version looks clearly worse than the default one; empty when it does not. */
  readonly flags: readonly string[];
}

export interface AppTraffic {
  readonly app: string;
  readonly defaultVersion: string | null;
  readonly requestsPerSecond: number;
  readonly versions: readonly VersionTraffic[];
}

/** A version is compared only with this many requests in the window, so a handful of requests flags nothing. */
export const FLAG_MIN_REQUESTS = 20;
/** 5xx: at least this many, at least this many points above the default version, and at least twice its ratio. */
export const FLAG_MIN_ERRORS = 5;
export const FLAG_ERROR_POINTS = 0.02;
/** Latency: at least twice the default version's and this much slower. */
export const FLAG_LATENCY_MIN_EXTRA_SECONDS = 0.05;
/**
 * A latency quantile is compared only when at least this many requests of
 * each version lie above it: the p99 from 500 requests in the window, the p90
 * from 50. Below that a quantile rests on fewer than five requests, and a
 * single slow one (a pause of the task's runtime, of the machine) would flag
 * a version.
 */
export const FLAG_LATENCY_TAIL_REQUESTS = 5;

/**
 * The q-quantile (0-1) of a histogram, as Prometheus's histogram_quantile:
 * linear within the bucket it falls in (the first starts at 0); one past the
 * last bound answers the last bound. Null without observations.
 */
export function quantile(bounds: readonly number[], counts: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i] ?? 0;
    if (below + count >= rank && count > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1] ?? null;
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      const upper = bounds[i] as number;
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return bounds[bounds.length - 1] ?? null;
}

const ms = (seconds: number | null): number | null => (seconds === null ? null : Math.round(seconds * 1e5) / 100);

/** One app's versions side by side; `bounds` are the histogram's (seconds) when the windows have buckets. */
export function appTraffic(app: string, defaultVersion: string | null, windows: ReadonlyMap<string, TrafficWindow>, bounds: readonly number[] | null): AppTraffic {
  let total = 0;
  for (const w of windows.values()) total += w.requestsPerSecond;
  const views = [...windows.entries()]
    .sort(([a], [b]) => (a === defaultVersion ? -1 : b === defaultVersion ? 1 : a < b ? -1 : a > b ? 1 : 0))
    .map(([version, w]) => versionView(version, w, total, bounds));
  const base = views.find((v) => v.version === defaultVersion) ?? null;
  return {
    app,
    defaultVersion,
    requestsPerSecond: total,
    versions: views.map((v) => (v === base ? v : { ...v, flags: flagsAgainst(v, base, defaultVersion) })),
  };
}

function versionView(version: string, w: TrafficWindow, appRate: number, bounds: readonly number[] | null): VersionTraffic {
  const histogram = bounds && w.buckets ? w.buckets : null;
  return {
    version,
    requestsPerSecond: w.requestsPerSecond,
    share: appRate > 0 ? w.requestsPerSecond / appRate : null,
    errorRatio: w.requests > 0 ? w.errors / w.requests : null,
    p50Ms: histogram ? ms(quantile(bounds as readonly number[], histogram, 0.5)) : null,
    p90Ms: histogram ? ms(quantile(bounds as readonly number[], histogram, 0.9)) : null,
    p99Ms: histogram ? ms(quantile(bounds as readonly number[], histogram, 0.99)) : null,
    meanMs: ms(w.meanSeconds),
    requests: w.requests,
    errors: w.errors,
    flags: [],
  };
}

const percent = (ratio: number) => `${(ratio * 100).toFixed(1)} %`;

/** What makes `v` clearly worse than the default version `base` (null: the default served too little to compare). */
export function flagsAgainst(v: VersionTraffic, base: VersionTraffic | null, baseName: string | null): string[] {
  if (v.requests < FLAG_MIN_REQUESTS) return [];
  const flags: string[] = [];
  const ratio = v.errorRatio ?? 0;
  const compared = base !== null && base.requests >= FLAG_MIN_REQUESTS;
  const baseRatio = compared ? (base.errorRatio ?? 0) : 0;
  if (v.errors >= FLAG_MIN_ERRORS && ratio >= baseRatio + FLAG_ERROR_POINTS && ratio >= 2 * baseRatio) {
    flags.push(compared ? `5xx ${percent(ratio)} (${baseName} ${percent(baseRatio)})` : `5xx ${percent(ratio)}`);
  }
  const latency = compared ? latencyToCompare(v, base) : null;
  if (latency !== null) {
    const [name, mine, theirs] = latency;
    if (mine >= 2 * theirs && mine - theirs >= FLAG_LATENCY_MIN_EXTRA_SECONDS * 1000) {
      flags.push(`${name} ${mine.toFixed(1)} ms (${baseName} ${theirs.toFixed(1)} ms)`);
    }
  }
  return flags;
}

/** The latency two versions are compared by: the highest quantile both served enough requests for, else the mean where there is no histogram. */
function latencyToCompare(v: VersionTraffic, base: VersionTraffic): [string, number, number] | null {
  if (v.p99Ms === null || base.p99Ms === null || v.p90Ms === null || base.p90Ms === null) {
    return v.meanMs !== null && base.meanMs !== null ? ['mean latency', v.meanMs, base.meanMs] : null;
  }
  const fewest = Math.min(v.requests, base.requests);
  if (fewest >= FLAG_LATENCY_TAIL_REQUESTS * 100) return ['p99', v.p99Ms, base.p99Ms];
  if (fewest >= FLAG_LATENCY_TAIL_REQUESTS * 10) return ['p90', v.p90Ms, base.p90Ms];
  return null;
}

/**
 * Windows of several nodes added up: rates and counts add, histograms add
 * bucket by bucket (when every node has one with the same bounds), means are
 * weighted by requests.
 */
export function addWindows(windows: readonly TrafficWindow[]): TrafficWindow {
  let requests = 0;
  let errors = 0;
  let rate = 0;
  let weighted = 0;
  let weight = 0;
  let buckets: number[] | null = windows.length > 0 && windows.every((w) => w.buckets !== null) ? new Array<number>(windows[0]!.buckets!.length).fill(0) : null;
  for (const w of windows) {
    requests += w.requests;
    errors += w.errors;
    rate += w.requestsPerSecond;
    if (buckets && w.buckets) {
      if (w.buckets.length !== buckets.length) buckets = null;
      else w.buckets.forEach((c, i) => (buckets![i]! += c));
    }
    if (w.meanSeconds !== null && w.requests > 0) {
      weighted += w.meanSeconds * w.requests;
      weight += w.requests;
    }
  }
  return { requests, errors, requestsPerSecond: rate, buckets, meanSeconds: weight > 0 ? weighted / weight : null };
}

/** One node's windows of one app (what each agent publishes). */
export interface NodeAppWindows {
  readonly node: string;
  readonly defaultVersion: string | null;
  readonly bounds: readonly number[] | null;
  readonly versions: Readonly<Record<string, TrafficWindow>>;
}

/** An app across the fleet: each version's windows of every node added up, then compared as on one node. */
export function fleetAppTraffic(app: string, published: readonly NodeAppWindows[]): AppTraffic & { readonly nodes: readonly string[] } {
  const byVersion = new Map<string, TrafficWindow[]>();
  for (const node of published) for (const [version, w] of Object.entries(node.versions)) byVersion.set(version, [...(byVersion.get(version) ?? []), w]);
  const first = published[0]?.bounds ?? null;
  const sameBounds = first !== null && published.every((p) => p.bounds !== null && p.bounds.join() === first.join());
  const windows = new Map([...byVersion].map(([version, ws]) => [version, addWindows(sameBounds ? ws : ws.map((w) => ({ ...w, buckets: null })))]));
  const defaults = [...new Set(published.map((p) => p.defaultVersion).filter((d) => d !== null))];
  return { ...appTraffic(app, defaults[0] ?? null, windows, sameBounds ? first : null), nodes: published.map((p) => p.node).sort() };
}
