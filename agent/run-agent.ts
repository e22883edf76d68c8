/** Wires the adapters to the reconcile loop: what `edgeroute agent` runs. */
import type { Logger } from 'pino';
import { affectsRouting, appsToResync } from './core/marathon-events.js';
import { HostResolver } from './adapters/host-resolver.js';
import { MarathonClient, parseMarathonUrls } from './adapters/marathon-client.js';
import { DEFAULT_STREAM_OPTIONS, MarathonEventStream } from './adapters/marathon-event-stream.js';
import { NginxAdmin } from './adapters/nginx-admin.js';
import { RedisHealthStore } from './adapters/redis-health-store.js';
import { RedisLink } from './adapters/redis-link.js';
import { HealthMemory } from './health-memory.js';
import { Reconciler } from './reconciler.js';

export interface AgentOptions {
  readonly marathon: string;
  readonly nginxAdmin: string;
  readonly adminToken: string;
  readonly redis: string | null;
  readonly group: string | null;
  /** Key prefix in Redis. */
  readonly redisPrefix: string;
  readonly healthTtlSeconds: number;
  readonly marathonCa: string | null;
  readonly publishDelaySeconds: number;
  readonly warmupSeconds: number;
  readonly warmupAggression: number;
  readonly warmupStepMs: number;
  readonly debounceMs: number;
  readonly resyncIntervalMs: number;
  readonly nginxCheckIntervalMs: number;
  readonly stallTimeoutMs: number;
}

export const AGENT_DEFAULTS = {
  redisPrefix: 'edgeroute:',
  healthTtlSeconds: 86_400,
  marathonCa: null,
  publishDelaySeconds: 0,
  warmupSeconds: 0,
  warmupAggression: 1,
  warmupStepMs: 1_000,
  debounceMs: 20,
  resyncIntervalMs: 300_000,
  nginxCheckIntervalMs: 1_000,
  stallTimeoutMs: 30_000,
} as const;

const REDIS_STARTUP_WAIT_MS = 3_000;

export interface RunningAgent {
  readonly reconciler: Reconciler;
  readonly events: MarathonEventStream;
  /** Marathon events received, by type. */
  readonly eventCounts: Map<string, number>;
  readonly healthMemory: HealthMemory;
  stop(): Promise<void>;
}

export function startAgent(opts: AgentOptions, log: Logger): RunningAgent {
  const marathon = new MarathonClient(parseMarathonUrls(opts.marathon), { caFile: opts.marathonCa });
  const nginx = new NginxAdmin(opts.nginxAdmin.replace(/\/+$/, ''), opts.adminToken);
  const resolver = new HostResolver();
  const redis = opts.redis ? new RedisLink(opts.redis, log.child({ component: 'redis' })) : null;
  const healthMemory = new HealthMemory(
    redis ? new RedisHealthStore(redis.client, opts.redisPrefix) : null,
    opts.healthTtlSeconds,
    log.child({ component: 'health-memory' }),
  );

  const reconciler = new Reconciler(
    {
      fetchApps: () => marathon.fetchApps(),
      fetchApp: (id) => marathon.fetchApp(id),
      resolveHosts: (names) => resolver.resolve(names),
      push: (body) => nginx.push(body),
      pluginStatus: () => nginx.status(),
      healthMemory,
      now: Date.now,
    },
    {
      routing: {
        group: opts.group,
        defaultPublishDelaySeconds: opts.publishDelaySeconds,
        defaultWarmupSeconds: opts.warmupSeconds,
        warmupAggression: opts.warmupAggression,
        warmupStepMs: opts.warmupStepMs,
      },
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
        if (!affectsRouting(event)) return;
        const apps = appsToResync(event);
        if (apps) reconciler.requestAppSync(apps, event.type);
        else reconciler.requestSync(event.type);
      },
      // Events may have been missed while detached.
      onConnected: () => reconciler.requestSync('event stream attached'),
    },
    log.child({ component: 'marathon-events' }),
    { ...DEFAULT_STREAM_OPTIONS, stallTimeoutMs: opts.stallTimeoutMs },
  );

  redis?.onReady(() => void healthMemory.flush());
  redis?.connect();
  // The first sync is when the shared health memory matters most (an agent
  // restarted during a Marathon failover), so give Redis a moment to connect.
  const started = (redis ? redis.whenReady(REDIS_STARTUP_WAIT_MS) : Promise.resolve(true)).then((ready) => {
    if (!ready) log.warn({ waitedMs: REDIS_STARTUP_WAIT_MS }, 'redis not reachable at start; starting with local health memory');
    if (stopped) return;
    reconciler.start();
    events.start();
  });
  let stopped = false;
  log.info({ marathon: marathon.endpoint.baseUrl, nginxAdmin: opts.nginxAdmin, group: opts.group }, 'agent started');

  return {
    reconciler,
    events,
    eventCounts,
    healthMemory,
    async stop() {
      stopped = true;
      await started;
      await events.stop();
      await reconciler.stop();
      await redis?.close();
    },
  };
}
