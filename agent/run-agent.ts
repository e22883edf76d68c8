/** Wires the adapters to the reconcile loop: what `edgeroute agent` runs. */
import type { Logger } from 'pino';
import { affectsRouting } from './core/marathon-events.js';
import { HostResolver } from './adapters/host-resolver.js';
import { MarathonClient, parseMarathonUrls } from './adapters/marathon-client.js';
import { DEFAULT_STREAM_OPTIONS, MarathonEventStream } from './adapters/marathon-event-stream.js';
import { NginxAdmin } from './adapters/nginx-admin.js';
import { RedisLink } from './adapters/redis-link.js';
import { Reconciler } from './reconciler.js';

export interface AgentOptions {
  readonly marathon: string;
  readonly nginxAdmin: string;
  readonly adminToken: string;
  readonly redis: string | null;
  readonly group: string | null;
  readonly debounceMs: number;
  readonly resyncIntervalMs: number;
  readonly nginxCheckIntervalMs: number;
  readonly stallTimeoutMs: number;
}

export const AGENT_DEFAULTS = {
  debounceMs: 20,
  resyncIntervalMs: 300_000,
  nginxCheckIntervalMs: 1_000,
  stallTimeoutMs: 30_000,
} as const;

export interface RunningAgent {
  readonly reconciler: Reconciler;
  readonly events: MarathonEventStream;
  /** Marathon events received, by type. */
  readonly eventCounts: Map<string, number>;
  stop(): Promise<void>;
}

export function startAgent(opts: AgentOptions, log: Logger): RunningAgent {
  const marathon = new MarathonClient(parseMarathonUrls(opts.marathon));
  const nginx = new NginxAdmin(opts.nginxAdmin.replace(/\/+$/, ''), opts.adminToken);
  const resolver = new HostResolver();
  const redis = opts.redis ? new RedisLink(opts.redis, log.child({ component: 'redis' })) : null;

  const reconciler = new Reconciler(
    {
      fetchApps: () => marathon.fetchApps(),
      resolveHosts: (names) => resolver.resolve(names),
      push: (body) => nginx.push(body),
      pluginStatus: () => nginx.status(),
    },
    {
      routing: { group: opts.group },
      debounceMs: opts.debounceMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      nginxCheckIntervalMs: opts.nginxCheckIntervalMs,
      minRetryMs: 250,
      maxRetryMs: 10_000,
    },
    log.child({ component: 'reconciler' }),
  );

  const eventCounts = new Map<string, number>();
  const events = new MarathonEventStream(
    marathon,
    {
      onEvent: (event) => {
        eventCounts.set(event.type, (eventCounts.get(event.type) ?? 0) + 1);
        if (affectsRouting(event)) reconciler.requestSync(event.type);
      },
      // Events may have been missed while detached.
      onConnected: () => reconciler.requestSync('event stream attached'),
    },
    log.child({ component: 'marathon-events' }),
    { ...DEFAULT_STREAM_OPTIONS, stallTimeoutMs: opts.stallTimeoutMs },
  );

  redis?.connect();
  reconciler.start();
  events.start();
  log.info({ marathon: marathon.endpoint.baseUrl, nginxAdmin: opts.nginxAdmin, group: opts.group }, 'agent started');

  return {
    reconciler,
    events,
    eventCounts,
    async stop() {
      await events.stop();
      await reconciler.stop();
      await redis?.close();
    },
  };
}
