/** `edgeroute nginx-conf`: writes the nginx config a routing node runs. */
import { execa } from 'execa';
import { renderNginxConf, type NginxConfOptions } from '../dataplane/nginx/conf/render.js';
import { DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS } from '../dataplane/upstream-idle-timeout.js';
import { defaultNginxBinary, type Flavor } from '../dataplane/nginx/conf/flavor.js';
import { redisTargetFromOptions, SENTINEL_OPTIONS } from '../fleet/redis-target.js';
import { helpText, numberOption, readOptions, stringOption, UsageError, type OptionSpec, type OptionValues } from './options.js';

export const NGINX_CONF_OPTIONS: readonly OptionSpec[] = [
  { name: 'out', kind: 'string', required: true, help: 'folder to write nginx.conf, admin-token, logs/ and temp/ into' },
  { name: 'listen', kind: 'list', default: '80', help: 'public listen address(es): PORT, HOST:PORT, [IPv6]:PORT' },
  { name: 'admin-listen', kind: 'list', default: '127.0.0.1:8081', help: 'admin listener: loopback HOST:PORT or unix:/path' },
  { name: 'flavor', kind: 'string', default: 'auto', help: 'debian (nginx-extras) or openresty; auto detects' },
  { name: 'admin-token', kind: 'string', help: 'admin token; generated when absent' },
  { name: 'dict-size', kind: 'string', default: '64m', help: 'size of the routing-table shared dict' },
  { name: 'worker-processes', kind: 'string', default: 'auto', help: 'nginx worker_processes' },
  { name: 'redis', kind: 'string', help: 'Redis with split policies, redis://[user:pass@]IP:port[/db], or rediss:// for TLS; none: every app uses its default version' },
  { name: 'redis-ca', kind: 'string', help: "CA bundle (PEM) that signed Redis's certificate, for rediss:// (default: /etc/ssl/certs/ca-certificates.crt)" },
  { name: 'redis-tls-name', kind: 'string', help: "the name Redis's certificate must carry, for rediss:// or --redis-tls (default: the IP connected to)" },
  { name: 'redis-prefix', kind: 'string', default: 'edgeroute:', help: 'prefix of every Redis key' },
  ...SENTINEL_OPTIONS,
  { name: 'policy-refresh', kind: 'string', default: '0.5', help: 'seconds between policy reads (a PUBLISH on <prefix>policy-changed is faster)' },
  { name: 'region-var', kind: 'string', help: 'nginx variable with the request region (e.g. geoip2_region, http_x_region)' },
  { name: 'version-header', kind: 'boolean', help: 'also send X-Edgeroute-Version to clients' },
  { name: 'tls-listen', kind: 'list', help: 'public TLS listen address(es), e.g. 443' },
  { name: 'tls-cert', kind: 'string', help: 'certificate (PEM) for --tls-listen' },
  { name: 'tls-key', kind: 'string', help: 'private key (PEM) for --tls-listen' },
  { name: 'max-body-size', kind: 'string', default: '0', help: 'largest request body on this node, nginx size syntax (10m); 0: no limit, as HAProxy (edgeroute.maxBodySize sets one per app)' },
  { name: 'websocket-idle-timeout', kind: 'string', default: '3600', help: 'seconds an upgraded (WebSocket) connection may stay silent before nginx closes it' },
  { name: 'upstream-idle-timeout', kind: 'string', default: String(DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS), help: "seconds nginx keeps an idle connection to a task for the next request; keep it below the apps' own idle timeout (Node's and uvicorn's 5 s), so that nginx closes it first" },
  { name: 'real-ip-from', kind: 'list', help: 'trusted proxies (CIDRs) whose header gives the client address' },
  { name: 'real-ip-header', kind: 'string', default: 'X-Forwarded-For', help: 'the header with the client address' },
  { name: 'check', kind: 'boolean', help: 'run nginx -t on what was written; exit 1 when it fails' },
  { name: 'snapshot-file', kind: 'string', help: "the agent's last table, loaded at start (default DIR/snapshot.ndjson; \"off\" for none)" },
];

export async function nginxConfCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(NGINX_CONF_OPTIONS, argv, process.env, false, 'nginx-conf');
  if (values.help) {
    console.log(helpText('nginx-conf', 'Renders templates/nginx.conf.hbs into a folder that `nginx -p DIR -c DIR/nginx.conf` runs.', NGINX_CONF_OPTIONS));
    return 0;
  }
  let rendered;
  try {
    rendered = renderNginxConf(nginxConfOptions(values));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const nginx = defaultNginxBinary(rendered.flavor);
  console.log(`wrote ${rendered.confPath} (${rendered.flavor})`);
  if (values.check) {
    // Only static settings change here; routing never needs this or a reload.
    const test = await execa(nginx, ['-t', '-p', rendered.prefix, '-c', rendered.confPath], { reject: false });
    const report = String(test.stderr).trim();
    if (test.exitCode !== 0) {
      console.error(`edgeroute nginx-conf: nginx -t failed:\n${report}`);
      return 1;
    }
    console.log(report);
  }
  if (rendered.tokenGenerated) {
    console.log(`generated an admin token in ${rendered.tokenFile}; give it to the agent:`);
    console.log(`  export EDGEROUTE_ADMIN_TOKEN=$(cat ${rendered.tokenFile})`);
  }
  console.log(`start nginx with:\n  ${nginx} -p ${rendered.prefix} -c ${rendered.confPath}`);
  if (rendered.snapshotFile) console.log(`and give the agent --snapshot-file ${rendered.snapshotFile}, so a restarted nginx serves the last table at once`);
  return 0;
}

/** The renderer's options from the flags (or a config file's "nginx-conf" section); `edgeroute install` reads them too. */
export function nginxConfOptions(values: OptionValues): NginxConfOptions {
  const flavor = stringOption(values, 'flavor') ?? 'auto';
  if (!['auto', 'debian', 'openresty'].includes(flavor)) throw new UsageError(`--flavor must be auto, debian or openresty, got "${flavor}"`);
  const workers = stringOption(values, 'worker-processes') ?? 'auto';
  if (workers !== 'auto' && !/^[1-9]\d*$/.test(workers)) throw new UsageError(`--worker-processes must be auto or a positive number`);
  const dictSize = stringOption(values, 'dict-size') ?? '64m';
  if (!/^\d+[km]?$/i.test(dictSize)) throw new UsageError('--dict-size must look like 64m');
  const maxBodySize = stringOption(values, 'max-body-size') ?? '0';
  if (!/^\d+[kmg]?$/i.test(maxBodySize)) throw new UsageError('--max-body-size must look like 10m, or 0 for no limit');
  return {
    outDir: stringOption(values, 'out') ?? '',
    listen: (values.listen as string[] | undefined) ?? [],
    adminListen: (values['admin-listen'] as string[] | undefined) ?? [],
    flavor: flavor as Flavor | 'auto',
    adminToken: stringOption(values, 'admin-token') ?? undefined,
    dictSize,
    workerProcesses: workers === 'auto' ? 'auto' : Number(workers),
    redis: stringOption(values, 'redis'),
    redisSentinel: sentinelSettings(values),
    redisCa: stringOption(values, 'redis-ca'),
    redisTlsName: stringOption(values, 'redis-tls-name'),
    redisPrefix: stringOption(values, 'redis-prefix') ?? 'edgeroute:',
    policyRefreshSeconds: numberOption(values, 'policy-refresh', 0.05),
    regionVar: stringOption(values, 'region-var'),
    versionResponseHeader: values['version-header'] === true,
    snapshotFile: stringOption(values, 'snapshot-file') === 'off' ? null : (stringOption(values, 'snapshot-file') ?? undefined),
    tlsListen: (values['tls-listen'] as string[] | undefined) ?? [],
    tlsCert: stringOption(values, 'tls-cert'),
    tlsKey: stringOption(values, 'tls-key'),
    realIpFrom: (values['real-ip-from'] as string[] | undefined) ?? [],
    realIpHeader: stringOption(values, 'real-ip-header') ?? 'X-Forwarded-For',
    maxBodySize,
    websocketIdleTimeoutSeconds: numberOption(values, 'websocket-idle-timeout', 1),
    upstreamIdleTimeoutSeconds: numberOption(values, 'upstream-idle-timeout', 0.1),
  };
}

/** --redis-sentinels and --redis-master for the plugin (with --redis-tls: TLS to the sentinels and the master); null without them. */
function sentinelSettings(values: OptionValues): NginxConfOptions['redisSentinel'] {
  let target;
  try {
    target = redisTargetFromOptions(values, null);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (target?.kind !== 'sentinel') return null;
  return { sentinels: target.sentinels, master: target.master, user: target.user, password: target.password, sentinelPassword: target.sentinelPassword, tls: target.tls };
}
