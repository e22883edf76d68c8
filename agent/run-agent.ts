/** Wires the adapters to the reconcile loop: what `edgeroute agent` runs. */
import type { Logger } from 'pino';
import { HostResolver } from './source/marathon/host-resolver.js';
import { MarathonClient, parseMarathonUrls } from './source/marathon/marathon-client.js';
import { DEFAULT_STREAM_OPTIONS, MarathonEventStream } from './source/marathon/marathon-event-stream.js';
import { NginxDataPlane } from './dataplane/nginx/nginx-data-plane.js';
import { HaproxyDataPlane } from './dataplane/haproxy/haproxy-data-plane.js';
import { HaproxyPolicyFeed } from './dataplane/haproxy/policy-feed.js';
import { HaproxyStatsMetrics } from './dataplane/haproxy/stats-metrics.js';
import { HaproxyCerts } from './dataplane/haproxy/haproxy-certs.js';
import { NginxCerts } from './dataplane/nginx/nginx-certs.js';
import type { DataPlane } from './dataplane/data-plane.js';
import { RedisHealthStore } from './fleet/redis-health-store.js';
import { RedisLink } from './fleet/redis-link.js';
import type { RedisTarget } from './fleet/redis-target.js';
import { HealthMemory } from './control/health-memory.js';
import { Reconciler } from './control/reconciler.js';
import { RedisPolicies } from './fleet/redis-policies.js';
import { closeApi } from './api/closing.js';
import { buildApi, parseListenAddress } from './api/server.js';
import { AgentFeed } from './observe/feed.js';
import { AgentMetrics, countByState } from './observe/metrics.js';
import { EventCounts } from './observe/event-counts.js';
import { syncOnEvents } from './control/event-handling.js';
import { subscribeFleetChannels } from './fleet/fleet-channels.js';
import { syncReporter } from './observe/sync-reporting.js';
import type { FastifyInstance } from 'fastify';
import { NodeRegistry } from './fleet/node-registry.js';
import { hostname } from 'node:os';
import type { SyncObserver } from './control/reconciler.js';
import { DrainBoard } from './fleet/redis-drains.js';
import { DrainWatcher } from './control/drain-watcher.js';
import { startCertWatcher } from './certs/start-cert-watcher.js';
import { createHash } from 'node:crypto';
import { TRAFFIC_SAMPLER_DEFAULTS, TrafficSampler } from './observe/traffic-sampler.js';
import { TrafficBoard } from './fleet/traffic-board.js';
import { TrafficPublisher } from './fleet/traffic-publisher.js';
import { readRollouts } from './fleet/rollout-records.js';
import { policiesSummary } from './core/fleet-view.js';
import { startAcme, type AcmeAgentOptions } from './acme/start-acme.js';
import { followAcmeChallenges, type ChallengeTarget } from './acme/acme-challenge-sync.js';
import { NginxAcmeChallenges } from './dataplane/nginx/nginx-acme-challenges.js';
import { ACME_DEFAULTS } from './acme/acme-manager.js';

export interface AgentOptions {
  readonly marathon: string;
  readonly nginxAdmin: string;
  /** HAProxy's admin stats socket (haproxy-conf's --admin-socket): drive HAProxy instead of nginx; null: nginx. */
  readonly haproxySocket: string | null;
  /** The folder haproxy-conf wrote: lets the agent grow the pool or add TCP listeners with a reload; null: it only warns. */
  readonly haproxyConfDir: string | null;
  readonly adminToken: string;
  /** A Redis URL, or a target (one URL, or a master found through Sentinel); null: no Redis. */
  readonly redis: string | RedisTarget | null;
  /** CA bundle for a rediss:// Redis URL given as a string; null: the system bundle. */
  readonly redisCa: string | null;
  readonly group: string | null;
  /** --marathon-lb-labels: apps without edgeroute.* labels are read by their marathon-lb labels. */
  readonly marathonLbLabels?: boolean;
  /** Key prefix in Redis. */
  readonly redisPrefix: string;
  readonly healthTtlSeconds: number;
  readonly marathonCa: string | null;
  readonly publishDelaySeconds: number;
  readonly warmupSeconds: number;
  readonly warmupAggression: number;
  readonly warmupStepMs: number;
  readonly debounceMs: number;
  /** The agent's HTTP API and dashboard, "HOST:PORT"; null: none. */
  readonly listen: string | null;
  /** Token for the API's writes; null: the admin token. */
  readonly apiToken: string | null;
  /** "token": the API's reads need the token too (except /healthz, /readyz and the dashboard's files). */
  readonly apiReads: 'open' | 'token';
  /** /readyz fails when the event stream is down and the last sync is older than this. */
  readonly readyMaxAgeMs: number;
  /** Where to keep the last pushed table for the plugin to load at start (nginx-conf's snapshot file); null: nowhere. */
  readonly snapshotFile: string | null;
  /** This routing node's id in the fleet (Redis); null: the host name. */
  readonly nodeId: string | null;
  readonly resyncIntervalMs: number;
  readonly nginxCheckIntervalMs: number;
  readonly stallTimeoutMs: number;
  /** Folder of certificates to serve by SNI (`--certs`), on nginx or HAProxy; null: only nginx-conf's or haproxy-conf's --tls-cert. */
  readonly certs: string | null;
  /** `--acme-directory`: certificates for apps labelled edgeroute.acme=true (needs Redis); null: none. */
  readonly acme?: AcmeAgentOptions | null;
  /** How often the data plane's request counters are read, ms (default 5 s). */
  readonly trafficIntervalMs?: number;
  /** How often the certificates are checked against the folder and the data plane (tests); default 2 s. */
  readonly certScanIntervalMs?: number;
  /** Width of one slot of the traffic history, ms (default 15 s; the history keeps 30 minutes). */
  readonly trafficSlotMs?: number;
}

export const AGENT_DEFAULTS = {
  redisPrefix: 'edgeroute:',
  redisCa: null,
  healthTtlSeconds: 86_400,
  marathonCa: null,
  publishDelaySeconds: 0,
  warmupSeconds: 0,
  warmupAggression: 1,
  warmupStepMs: 1_000,
  debounceMs: 20,
  listen: null,
  apiToken: null,
  apiReads: 'open',
  readyMaxAgeMs: 60_000,
  snapshotFile: null,
  nodeId: null,
  resyncIntervalMs: 300_000,
  nginxCheckIntervalMs: 1_000,
  stallTimeoutMs: 30_000,
  certs: null,
  haproxySocket: null,
  haproxyConfDir: null,
  trafficIntervalMs: 5_000,
} as const;

const REDIS_STARTUP_WAIT_MS = 3_000;
const DRAIN_MARKS_STARTUP_WAIT_MS = 2_000;
/**
 * The first full read waits this long at most for the event stream to
 * attach: a read begun before the attach must be done again after it (events
 * may have been missed in between), which at 10,000 apps doubles the start's
 * work and its peak memory.
 */
const STREAM_ATTACH_WAIT_MS = 1_000;

export interface RunningAgent {
  readonly reconciler: Reconciler;
  readonly events: MarathonEventStream;
  /** Marathon events received, by type. */
  readonly eventCounts: Map<string, number>;
  readonly healthMemory: HealthMemory;
  readonly feed: AgentFeed;
  readonly metrics: AgentMetrics;
  /** The fleet of routing nodes; null without Redis. */
  readonly nodes: NodeRegistry | null;
  /** The traffic sampler (requests, 5xx, latency per app version); null when the data plane has no counters to read. */
  readonly traffic: TrafficSampler | null;
  /** Resolves when the API listens (at once without one). */
  readonly ready: Promise<void>;
  /** The API's URL, once `ready` resolved; null without --listen. */
  apiUrl: string | null;
  stop(): Promise<void>;
}

export function startAgent(opts: AgentOptions, log: Logger): RunningAgent {
  const marathon = new MarathonClient(parseMarathonUrls(opts.marathon), { caFile: opts.marathonCa });
  const resolver = new HostResolver();
  const redisTarget: RedisTarget | null = typeof opts.redis === 'string' ? { kind: 'url', url: opts.redis, caFile: opts.redisCa } : opts.redis;
  const redis = redisTarget ? new RedisLink(redisTarget, log.child({ component: 'redis' })) : null;
  const healthMemory = new HealthMemory(
    redis ? new RedisHealthStore(redis.client, opts.redisPrefix) : null,
    opts.healthTtlSeconds,
    log.child({ component: 'health-memory' }),
  );

  const feed = new AgentFeed();
  const metrics = new AgentMetrics(() => countByState(reconciler.backendStatuses));
  // An HAProxy node's split policies come through the agent (an nginx node's plugin reads Redis itself).
  const haproxyPolicies = opts.haproxySocket && redis ? new HaproxyPolicyFeed(redis.client, opts.redisPrefix, log.child({ component: 'haproxy-policies' })) : null;
  const dataPlane: DataPlane = opts.haproxySocket
    ? new HaproxyDataPlane({ socket: opts.haproxySocket, confDir: opts.haproxyConfDir, policies: haproxyPolicies }, log.child({ component: 'haproxy' }))
    : new NginxDataPlane({ adminUrl: opts.nginxAdmin, adminToken: opts.adminToken, snapshotFile: opts.snapshotFile }, log, metrics.registry);
  // An HAProxy node's metrics per app and version: HAProxy's own counters, read when Prometheus scrapes.
  const haproxyStats = dataPlane instanceof HaproxyDataPlane && opts.haproxySocket ? new HaproxyStatsMetrics({ socket: opts.haproxySocket, labels: dataPlane, registry: metrics.registry, log: log.child({ component: 'haproxy-stats' }) }) : null;
  const reconciler: Reconciler = new Reconciler(
    {
      fetchApps: () => marathon.fetchApps(),
      fetchApp: (id) => marathon.fetchApp(id),
      resolveHosts: (names) => resolver.resolve(names),
      dataPlane,
      healthMemory,
      now: Date.now,
      observer: afterSync(syncReporter(feed, metrics, () => reconciler), () => {
        drains?.poke();
        acme?.tableChanged();
      }),
    },
    {
      routing: {
        group: opts.group,
        marathonLbLabels: opts.marathonLbLabels ?? false,
        defaultPublishDelaySeconds: opts.publishDelaySeconds,
        defaultWarmupSeconds: opts.warmupSeconds,
        warmupAggression: opts.warmupAggression,
        warmupStepMs: opts.warmupStepMs,
      },
      debounceMs: opts.debounceMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      dataPlaneCheckIntervalMs: opts.nginxCheckIntervalMs,
      minRetryMs: 250,
      maxRetryMs: 10_000,
    },
    log.child({ component: 'reconciler' }),
  );

  // Requests, 5xx and latency per app version, from the data plane's own counters.
  const trafficSource = haproxyStats ?? (dataPlane instanceof NginxDataPlane ? dataPlane : null);
  const trafficSlotMs = opts.trafficSlotMs ?? TRAFFIC_SAMPLER_DEFAULTS.slotMs;
  const traffic = trafficSource
    ? new TrafficSampler(trafficSource, log.child({ component: 'traffic' }), {
        ...TRAFFIC_SAMPLER_DEFAULTS,
        intervalMs: opts.trafficIntervalMs ?? TRAFFIC_SAMPLER_DEFAULTS.intervalMs,
        slotMs: trafficSlotMs,
        slots: Math.max(2, Math.round((TRAFFIC_SAMPLER_DEFAULTS.slotMs * TRAFFIC_SAMPLER_DEFAULTS.slots) / trafficSlotMs)),
      })
    : null;

  const eventCounts = new EventCounts(metrics);
  let attached: () => void = () => undefined;
  const streamAttached = new Promise<void>((resolve) => (attached = resolve));
  const onEvents = syncOnEvents(reconciler, (event) => eventCounts.count(event.type));
  const events = new MarathonEventStream(
    marathon,
    {
      ...onEvents,
      onConnected: () => {
        onEvents.onConnected();
        attached();
      },
    },
    log.child({ component: 'marathon-events' }),
    { ...DEFAULT_STREAM_OPTIONS, stallTimeoutMs: opts.stallTimeoutMs },
  );

  if (opts.acme && !redis) throw new Error('--acme-directory needs Redis (--redis or --redis-sentinels): the fleet keeps its ACME account, locks, challenges and certificates there');
  const certs = opts.certs || opts.acme
    ? startCertWatcher(
        {
          dir: opts.certs,
          // HAProxy keeps its keys in memory only: no snapshot file for it (the agent fills a restarted one).
          ...(opts.haproxySocket
            ? { target: new HaproxyCerts(opts.haproxySocket), snapshotFile: null }
            : { target: new NginxCerts(opts.nginxAdmin.replace(/\/+$/, ''), opts.adminToken), snapshotFile: opts.snapshotFile }),
          registry: metrics.registry,
          ...(opts.certScanIntervalMs === undefined ? {} : { scanIntervalMs: opts.certScanIntervalMs }),
        },
        log.child({ component: 'certs' }),
      )
    : null;
  // A reloaded or restarted HAProxy starts with haproxy.cfg's empty crt-list: refilled now, not at the next scan.
  if (certs && dataPlane instanceof HaproxyDataPlane) dataPlane.onNewWorker(() => certs.poke(0));

  redis?.onReady(() => {
    void healthMemory.flush();
    // A reconnect may be to a new master (a failover): an HAProxy node reads the policies now, not at its next poll.
    haproxyPolicies?.poke();
    haproxyChallenges?.poke();
  });
  const nodeId = opts.nodeId ?? hostname();
  const challengeTarget: ChallengeTarget =
    dataPlane instanceof HaproxyDataPlane
      ? { label: 'HAProxy', replace: (challenges) => dataPlane.replaceAcmeChallenges(challenges) }
      : new NginxAcmeChallenges(opts.nginxAdmin.replace(/\/+$/, ''), opts.adminToken);
  const acme =
    opts.acme && redis && certs
      ? startAcme(opts.acme, { redis: redis.client, prefix: opts.redisPrefix, nodeId, certs, challenges: challengeTarget, registry: metrics.registry, reconciler }, log.child({ component: 'acme' }))
      : null;
  // An HAProxy node that orders nothing still answers the fleet's ACME challenges: whichever node the CA reaches validates.
  const haproxyChallenges =
    redis && !acme && dataPlane instanceof HaproxyDataPlane
      ? followAcmeChallenges({ redis: redis.client, prefix: opts.redisPrefix, intervalMs: ACME_DEFAULTS.checkIntervalMs, target: challengeTarget }, log.child({ component: 'acme' }))
      : null;
  const policies = redis ? new RedisPolicies(redis.client, opts.redisPrefix) : null;
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');
  // The split policies the data plane applies (the nginx plugin says; an HAProxy node's come through the agent).
  const appliedPolicies = () => policiesSummary(haproxyPolicies ? haproxyPolicies.digests() : dataPlane.policyDigests, md5);
  const nodes = redis
    ? new NodeRegistry(
        redis.client,
        opts.redisPrefix,
        nodeId,
        () => ({ tableVersion: reconciler.pushedVersion, apiUrl: running.apiUrl, dataPlane: dataPlane.name, group: opts.group, lastPushAt: reconciler.stats.lastPushAt, policies: appliedPolicies() }),
        log.child({ component: 'fleet' }),
      )
    : null;
  // Each node's live traffic in Redis, for the fleet's sums (edgeroute compare).
  const trafficBoard = redis ? new TrafficBoard(redis.client, opts.redisPrefix) : null;
  if (traffic && trafficBoard && redis) {
    const publisher = new TrafficPublisher(trafficBoard, nodeId, Math.max(15_000, 3 * traffic.opts.intervalMs));
    let publishing = false;
    traffic.onSample((history) => {
      if (publishing || !redis.ready) return;
      publishing = true;
      publisher
        .publish(history, (app) => reconciler.table?.apps[app]?.defaultVersion ?? null)
        .catch((err: Error) => log.debug({ err: err.message }, 'traffic not published'))
        .finally(() => (publishing = false));
    });
  }
  const drainBoard = redis ? new DrainBoard(redis.client, opts.redisPrefix) : null;
  const drains = drainBoard
    ? new DrainWatcher(
        {
          board: drainBoard,
          nodeId,
          setDrains: (marks) => reconciler.setDrains(marks),
          drainsApplied: () => reconciler.drainsApplied,
          pushedVersion: () => reconciler.pushedVersion,
          dataPlane,
        },
        log.child({ component: 'drains' }),
      )
    : null;
  const subscriber =
    redis && policies && drainBoard
      ? subscribeFleetChannels(
          redis.client,
          { policies: policies.channel, drains: drainBoard.channel },
          {
            drainsChanged: () => drains?.poke(),
            policyChanged: (app) => {
              feed.publish({ type: 'policy-changed', app });
              haproxyPolicies?.poke();
            },
          },
        )
      : null;
  redis?.connect();
  // Events before the reconciler starts are only noted: its first sync serves them.
  events.start();
  // The first sync is when the shared health memory matters most (an agent
  // restarted during a Marathon failover), so give Redis a moment to connect.
  const started = (redis ? redis.whenReady(REDIS_STARTUP_WAIT_MS) : Promise.resolve(true)).then(async (ready) => {
    if (!ready) log.warn({ waitedMs: REDIS_STARTUP_WAIT_MS }, 'redis not reachable at start; starting with local health memory');
    if (stopped) return;
    // The drain marks before the first sync: a restarted agent must not put back
    // a task drained for a kill, even for one push.
    const marksRead = drains?.start();
    if (ready && marksRead) await Promise.race([marksRead, new Promise((resolve) => setTimeout(resolve, DRAIN_MARKS_STARTUP_WAIT_MS).unref())]);
    if (stopped) return;
    await Promise.race([streamAttached, new Promise((resolve) => setTimeout(resolve, STREAM_ATTACH_WAIT_MS).unref())]);
    if (stopped) return;
    reconciler.start();
    nodes?.start();
    haproxyPolicies?.start();
    traffic?.start();
  });
  let stopped = false;
  log.info(
    { marathon: marathon.endpoint.baseUrl, ...(opts.haproxySocket ? { haproxySocket: opts.haproxySocket } : { nginxAdmin: opts.nginxAdmin }), group: opts.group },
    'agent started',
  );

  let api: FastifyInstance | null = null;
  const running: RunningAgent = {
    reconciler,
    events,
    eventCounts: eventCounts.byType,
    healthMemory,
    feed,
    metrics,
    nodes,
    traffic,
    apiUrl: null,
    ready: Promise.resolve(),
    async stop() {
      stopped = true;
      await running.ready.catch(() => undefined);
      if (api) await closeApi(api);
      await traffic?.stop();
      await acme?.stop();
      await haproxyChallenges?.stop();
      await certs?.stop();
      await nodes?.stop();
      await drains?.stop();
      subscriber?.disconnect();
      haproxyPolicies?.stop();
      await started;
      await events.stop();
      await reconciler.stop();
      // The last sync's health, which it did not wait for, before Redis goes.
      await healthMemory.written(2_000);
      await redis?.close();
      await dataPlane.close();
      haproxyStats?.close();
    },
  };
  if (opts.listen) {
    const { host, port } = parseListenAddress(opts.listen);
    (running as { ready: Promise<void> }).ready = buildApi(
      {
        reconciler,
        feed,
        metrics,
        policies,
        nodes,
        token: opts.apiToken ?? opts.adminToken,
        marathonUrl: () => marathon.endpoint.baseUrl,
        marathonConnected: () => events.connected,
        redisConnected: () => (redis ? redis.ready : null),
        readyMaxAgeMs: opts.readyMaxAgeMs,
        readsNeedToken: opts.apiReads === 'token',
        certificates: certs ? () => certs.certificates() : null,
        acme: acme ? () => acme.views() : null,
        pluginVersion: () => dataPlane.release,
        dataPlane: dataPlane.name,
        operations:
          redis && drainBoard && policies
            ? (io) => ({
                marathon,
                redis: redis.client,
                prefix: opts.redisPrefix,
                board: drainBoard,
                policies,
                by: `api@${nodeId}`,
                apiToken: opts.apiToken ?? opts.adminToken,
                ...io,
              })
            : null,
        drains: drainBoard ? () => drainBoard.activeWithAcks() : null,
        nodeId,
        traffic,
        fleetTraffic: trafficBoard ? (app, ids) => trafficBoard.read(app, ids) : null,
        rollouts: redis ? (apps) => readRollouts(redis.client, opts.redisPrefix, apps) : null,
        fleetSelf: () => ({ group: opts.group, policies: appliedPolicies() }),
      },
      log.child({ component: 'api' }),
    ).then(async (built) => {
      api = built;
      const address = await built.listen({ host, port });
      running.apiUrl = address.replace('[::1]', '127.0.0.1');
      log.info({ url: running.apiUrl }, 'agent API listening');
    });
  }
  return running;
}

function afterSync(observer: SyncObserver, then: () => void): SyncObserver {
  return {
    synced(info) {
      observer.synced(info);
      then();
    },
    failed: (err) => observer.failed(err),
  };
}
