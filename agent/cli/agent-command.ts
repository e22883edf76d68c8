/** `edgeroute agent`: keeps one routing node's nginx in sync with Marathon. */
import { AGENT_DEFAULTS, startAgent } from '../run-agent.js';
import { groupSelectorProblem } from '../core/groups.js';
import { redisTargetFromOptions, SENTINEL_OPTIONS } from '../fleet/redis-target.js';
import { ACME_DEFAULTS } from '../acme/acme-manager.js';
import type { AcmeAgentOptions } from '../acme/start-acme.js';
import { createLogger } from './logger.js';
import { helpText, numberOption, readOptions, stringOption, UsageError, type OptionSpec } from './options.js';

const DEFAULT_NGINX_ADMIN = 'http://127.0.0.1:8081';

export const AGENT_OPTIONS: readonly OptionSpec[] = [
  { name: 'marathon', kind: 'string', required: true, help: 'Marathon URL(s), comma-separated; http://user:pass@host for basic auth' },
  { name: 'marathon-ca', kind: 'string', help: "PEM file of the CA of Marathon's HTTPS certificate" },
  { name: 'nginx-admin', kind: 'string', help: `the plugin's admin listener (default ${DEFAULT_NGINX_ADMIN})` },
  { name: 'haproxy-socket', kind: 'string', help: "drive HAProxy instead of nginx: its admin stats socket (haproxy-conf's --admin-socket)" },
  { name: 'haproxy-conf-dir', kind: 'string', help: 'with --haproxy-socket: the folder haproxy-conf wrote; when the backend pool runs out or a TCP port is outside --tcp-ports, the agent re-renders haproxy.cfg there and reloads HAProxy seamlessly (default: it only warns)' },
  { name: 'admin-token', kind: 'string', help: "token of the plugin's admin endpoint (shared with nginx-conf)" },
  { name: 'redis', kind: 'string', help: 'Redis URL, redis://[user:pass@]host:port[/db], or rediss:// for TLS' },
  { name: 'redis-ca', kind: 'string', help: "CA bundle (PEM) that signed Redis's certificate, for rediss:// (default: the system bundle)" },
  ...SENTINEL_OPTIONS,
  { name: 'node-id', kind: 'string', help: "this routing node's id in the fleet (default: the host name)" },
  { name: 'certs', kind: 'string', help: 'folder of certificates served by SNI: NAME.crt + NAME.key, or certbot\'s live/NAME/fullchain.pem + privkey.pem' },
  { name: 'acme-directory', kind: 'string', help: 'ACME directory URL: apps labelled edgeroute.acme=true get certificates for their vhosts from it (HTTP-01; needs Redis)' },
  { name: 'acme-email', kind: 'string', help: "with --acme-directory: the ACME account's contact address" },
  { name: 'acme-ca', kind: 'string', help: "with --acme-directory: PEM file of the CA of the directory's HTTPS certificate (a private or test CA)" },
  { name: 'acme-lock-timeout', kind: 'string', default: String(ACME_DEFAULTS.lockMs / 1000), help: "seconds a name's order lock outlives a node that stopped renewing it (died mid-order)" },
  { name: 'acme-retry', kind: 'string', default: String(ACME_DEFAULTS.retryFirstMs / 1000), help: 'seconds before the first retry of a failed order; doubles with each failure, up to 6 hours' },
  { name: 'acme-check-interval', kind: 'string', default: String(ACME_DEFAULTS.checkIntervalMs / 1000), help: 'seconds between readings of the fleet\'s ACME certificates, challenges and failures in Redis besides its notices' },
  { name: 'snapshot-file', kind: 'string', help: "where to keep the last table for nginx to load at start (nginx-conf's snapshot file)" },
  { name: 'listen', kind: 'string', default: '127.0.0.1:9090', help: 'the agent API and dashboard, HOST:PORT; "off" for none' },
  { name: 'api-reads', kind: 'string', default: 'open', help: 'open: anyone reaching --listen may read state and metrics; token: reads need the API token too (not /healthz, /readyz)' },
  { name: 'api-token', kind: 'string', help: "token for the API's writes (default: the admin token)" },
  { name: 'ready-max-age', kind: 'string', default: String(AGENT_DEFAULTS.readyMaxAgeMs / 1000), help: 'seconds /readyz tolerates without a sync while the event stream is down' },
  { name: 'redis-prefix', kind: 'string', default: AGENT_DEFAULTS.redisPrefix, help: 'prefix of every Redis key' },
  { name: 'health-ttl', kind: 'string', default: String(AGENT_DEFAULTS.healthTtlSeconds), help: 'seconds a remembered task health lives in Redis' },
  { name: 'group', kind: 'string', help: 'route only apps in these groups (edgeroute.group, a comma list; "*": every app); without it, only apps in no group' },
  { name: 'marathon-lb-labels', kind: 'boolean', help: "read apps without edgeroute.* labels by their marathon-lb labels (HAPROXY_GROUP, HAPROXY_0_VHOST, ...), with marathon-lb's meanings" },
  { name: 'publish-delay', kind: 'string', default: String(AGENT_DEFAULTS.publishDelaySeconds), help: 'seconds a task runs before publication (label edgeroute.publishDelaySeconds wins)' },
  { name: 'warmup', kind: 'string', default: String(AGENT_DEFAULTS.warmupSeconds), help: 'seconds of weight ramp-up after publication (label edgeroute.warmupSeconds wins)' },
  { name: 'warmup-aggression', kind: 'string', default: String(AGENT_DEFAULTS.warmupAggression), help: '1 ramps linearly; higher ramps faster at first' },
  { name: 'warmup-step-ms', kind: 'string', default: String(AGENT_DEFAULTS.warmupStepMs), help: 'push weight changes of warming backends at most this often' },
  { name: 'debounce-ms', kind: 'string', default: String(AGENT_DEFAULTS.debounceMs), help: 'wait after the first event of a burst before syncing' },
  { name: 'stall-timeout', kind: 'string', default: String(AGENT_DEFAULTS.stallTimeoutMs / 1000), help: "seconds without a byte on Marathon's event stream (it sends a heartbeat every 10 s) before reconnecting" },
  { name: 'traffic-interval', kind: 'string', default: String((AGENT_DEFAULTS.trafficIntervalMs) / 1000), help: "seconds between readings of the data plane's request counters (the dashboard's traffic plots, edgeroute compare)" },
  { name: 'resync-interval', kind: 'string', default: String(AGENT_DEFAULTS.resyncIntervalMs / 1000), help: 'seconds between full resyncs without events' },
  { name: 'log-level', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error' },
];

export async function agentCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(AGENT_OPTIONS, argv, process.env, false, 'agent');
  if (values.help) {
    console.log(helpText('agent', 'Watches Marathon and pushes routing changes to nginx (or HAProxy, --haproxy-socket), without reloads.', AGENT_OPTIONS));
    return 0;
  }
  const haproxySocket = stringOption(values, 'haproxy-socket');
  const nginxAdmin = stringOption(values, 'nginx-admin');
  if (haproxySocket !== null && nginxAdmin !== null) throw new UsageError('--haproxy-socket and --nginx-admin name two data planes: give one of them');
  const haproxyConfDir = stringOption(values, 'haproxy-conf-dir');
  if (haproxyConfDir !== null && haproxySocket === null) throw new UsageError('--haproxy-conf-dir is for HAProxy nodes: give --haproxy-socket too');
  const adminToken = stringOption(values, 'admin-token') ?? (haproxySocket !== null ? stringOption(values, 'api-token') : null);
  if (!adminToken) {
    throw new UsageError(
      haproxySocket !== null
        ? 'an HAProxy node needs a token for the agent API\'s writes: set EDGEROUTE_API_TOKEN (or --api-token)'
        : 'the admin token is required: set EDGEROUTE_ADMIN_TOKEN (or --admin-token) to the token nginx-conf used',
    );
  }
  const group = stringOption(values, 'group');
  const badGroup = group === null ? null : groupSelectorProblem(group);
  if (badGroup !== null) throw new UsageError(`--group ${badGroup}`);
  let redis;
  try {
    redis = redisTargetFromOptions(values, null);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const acme = acmeOptions(values, redis !== null);
  const log = createLogger(stringOption(values, 'log-level') ?? 'info');
  const agent = startAgent(
    {
      marathon: stringOption(values, 'marathon') ?? '',
      nginxAdmin: nginxAdmin ?? DEFAULT_NGINX_ADMIN,
      haproxySocket,
      haproxyConfDir,
      adminToken,
      redis,
      redisCa: stringOption(values, 'redis-ca'),
      redisPrefix: stringOption(values, 'redis-prefix') ?? AGENT_DEFAULTS.redisPrefix,
      healthTtlSeconds: numberOption(values, 'health-ttl', 1),
      marathonCa: stringOption(values, 'marathon-ca'),
      group,
      marathonLbLabels: values['marathon-lb-labels'] === true,
      publishDelaySeconds: numberOption(values, 'publish-delay', 0),
      warmupSeconds: numberOption(values, 'warmup', 0),
      warmupAggression: numberOption(values, 'warmup-aggression', 0.1),
      warmupStepMs: numberOption(values, 'warmup-step-ms', 50),
      debounceMs: numberOption(values, 'debounce-ms', 0),
      listen: stringOption(values, 'listen') === 'off' ? null : stringOption(values, 'listen'),
      apiToken: stringOption(values, 'api-token'),
      apiReads: apiReads(stringOption(values, 'api-reads')),
      snapshotFile: stringOption(values, 'snapshot-file'),
      nodeId: stringOption(values, 'node-id'),
      readyMaxAgeMs: numberOption(values, 'ready-max-age', 1) * 1000,
      resyncIntervalMs: numberOption(values, 'resync-interval', 1) * 1000,
      nginxCheckIntervalMs: AGENT_DEFAULTS.nginxCheckIntervalMs,
      stallTimeoutMs: numberOption(values, 'stall-timeout', 0.1) * 1000,
      certs: stringOption(values, 'certs'),
      acme,
      trafficIntervalMs: numberOption(values, 'traffic-interval', 0.2) * 1000,
    },
    log,
  );
  await agent.ready.catch((err: Error) => {
    throw new UsageError(`cannot listen on ${stringOption(values, 'listen')}: ${err.message}`);
  });
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await agent.stop();
  return 0;
}

function acmeOptions(values: ReturnType<typeof readOptions>, redis: boolean): AcmeAgentOptions | null {
  const directory = stringOption(values, 'acme-directory');
  const email = stringOption(values, 'acme-email');
  const caFile = stringOption(values, 'acme-ca');
  if (directory === null) {
    if (email !== null || caFile !== null) throw new UsageError(`--${email !== null ? 'acme-email' : 'acme-ca'} is for --acme-directory URL`);
    return null;
  }
  if (!/^https?:\/\/\S+$/.test(directory)) throw new UsageError(`--acme-directory must be an http(s) URL, not ${JSON.stringify(directory)}`);
  if (email === null || !/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError('--acme-directory needs --acme-email ADDRESS, the account\'s contact');
  if (!redis) throw new UsageError('--acme-directory needs Redis (--redis or --redis-sentinels): the fleet shares its ACME account, locks, challenges and certificates there');
  return {
    directory,
    email,
    caFile,
    lockMs: numberOption(values, 'acme-lock-timeout', 1) * 1000,
    retryFirstMs: numberOption(values, 'acme-retry', 0.1) * 1000,
    checkIntervalMs: numberOption(values, 'acme-check-interval', 0.1) * 1000,
  };
}

function apiReads(value: string | null): 'open' | 'token' {
  if (value === null || value === 'open') return 'open';
  if (value === 'token') return 'token';
  throw new UsageError(`--api-reads must be open or token, not ${JSON.stringify(value)}`);
}
