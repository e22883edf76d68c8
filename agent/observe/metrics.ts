/** The agent's Prometheus metrics (prom-client), on its own registry. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({ name: 'edgeroute_marathon_events_total', help: 'Marathon events received, by type', labelNames: ['type'], registers: [this.registry] });
  readonly syncs = new Counter({ name: 'edgeroute_syncs_total', help: 'Syncs, by kind (full, apps, clock) and result', labelNames: ['kind', 'result'], registers: [this.registry] });
  readonly syncSeconds = new Histogram({
    name: 'edgeroute_sync_duration_seconds',
    help: 'Time of a sync: read Marathon, compute, push',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly pushSeconds = new Histogram({
    name: 'edgeroute_push_duration_seconds',
    help: 'Time of a push to the nginx plugin',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly pushBytes = new Counter({ name: 'edgeroute_push_bytes_total', help: 'Bytes pushed to the nginx plugin', registers: [this.registry] });
  readonly marathonConnected = new Gauge({ name: 'edgeroute_marathon_connected', help: '1 while the Marathon event stream is attached', registers: [this.registry] });
  readonly redisConnected = new Gauge({ name: 'edgeroute_redis_connected', help: '1 while Redis is connected (0 when unset or down)', registers: [this.registry] });
  readonly dataPlaneInSync = new Gauge({ name: 'edgeroute_nginx_in_sync', help: '1 when nginx holds the current routing table', registers: [this.registry] });
  readonly apps = new Gauge({ name: 'edgeroute_apps', help: 'Routed logical apps', registers: [this.registry] });
  readonly backends: Gauge<'state'>;

  constructor(backendStates: () => ReadonlyMap<string, number>) {
    this.backends = new Gauge({
      name: 'edgeroute_backends',
      help: 'Tasks of routed apps, by state (published, warming, waiting, unhealthy, draining, starting)',
      labelNames: ['state'],
      registers: [this.registry],
      // Counted at scrape time: a hundred thousand tasks are not walked on every sync.
      collect() {
        this.reset();
        for (const [state, count] of backendStates()) this.set({ state }, count);
      },
    });
  }
}

/** Tasks by state, for the backends gauge. */
export function countByState(statuses: readonly { readonly state: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const status of statuses) counts.set(status.state, (counts.get(status.state) ?? 0) + 1);
  return counts;
}
