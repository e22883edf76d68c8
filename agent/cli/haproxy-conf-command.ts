/** `edgeroute haproxy-conf`: writes the HAProxy config an HAProxy routing node runs. */
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_BACKEND_POOL, DEFAULT_BALANCE_POOL, DEFAULT_TCP_BACKEND_POOL, renderHaproxyConf, type HaproxyConfOptions } from '../dataplane/haproxy/render.js';
import { DEFAULT_HAPROXY_BINARY, renderHaproxyUnit } from '../dataplane/haproxy/unit.js';
import { DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS } from '../dataplane/upstream-idle-timeout.js';
import { helpText, numberOption, readOptions, stringOption, UsageError, type OptionSpec, type OptionValues } from './options.js';

export const HAPROXY_CONF_OPTIONS: readonly OptionSpec[] = [
  { name: 'out', kind: 'string', required: true, help: 'folder to write haproxy.cfg, hosts.map, run/ (and tls/) into' },
  { name: 'listen', kind: 'list', default: '80', help: 'public HTTP listen address(es): PORT, HOST:PORT, [IPv6]:PORT, unix:/path' },
  { name: 'admin-socket', kind: 'string', help: "HAProxy's runtime API socket, for the agent's --haproxy-socket (default DIR/run/admin.sock)" },
  { name: 'admin-socket-group', kind: 'string', help: 'a group that may use the admin socket too (mode 660 instead of 600), e.g. the agent user\'s' },
  { name: 'tls-listen', kind: 'list', help: 'public TLS listen address(es), e.g. 443 (HTTP/2 and HTTP/1.1)' },
  { name: 'tls-cert', kind: 'string', help: 'certificate (PEM) for --tls-listen' },
  { name: 'tls-key', kind: 'string', help: 'private key (PEM) for --tls-listen' },
  { name: 'backend-pool', kind: 'string', default: String(DEFAULT_BACKEND_POOL), help: 'empty backends declared ahead for the agent to give apps without a reload (about 10 KB each)' },
  { name: 'leastconn-pool', kind: 'string', default: String(DEFAULT_BALANCE_POOL), help: 'backends declared ahead for apps with edgeroute.balance=leastconn (balance leastconn)' },
  { name: 'sticky-pool', kind: 'string', default: String(DEFAULT_BALANCE_POOL), help: 'backends declared ahead for apps with edgeroute.sticky (consistent hash of the sticky cookie)' },
  { name: 'region-header', kind: 'string', help: 'request header with the client region (a CDN\'s), for split policies\' region rules; else the Redis CIDR→region table' },
  { name: 'tcp-ports', kind: 'string', help: 'TCP ports FROM-TO (e.g. 10000-10100) one TCP frontend binds on the --listen hosts for apps with edgeroute.tcpPort; default none' },
  { name: 'tcp-backend-pool', kind: 'string', default: String(DEFAULT_TCP_BACKEND_POOL), help: 'empty TCP backends declared ahead for apps with edgeroute.tcpPort (with --tcp-ports)' },
  { name: 'user', kind: 'string', help: "user (and group) HAProxy's workers run as when started as root, e.g. haproxy" },
  { name: 'websocket-idle-timeout', kind: 'string', default: '3600', help: 'seconds an upgraded (WebSocket) connection may stay silent before HAProxy closes it' },
  { name: 'haproxy', kind: 'string', default: DEFAULT_HAPROXY_BINARY, help: 'the haproxy binary, for --check and the start command' },
  { name: 'unit', kind: 'string', help: 'also write the systemd unit here, e.g. /etc/systemd/system/edgeroute-haproxy.service' },
  { name: 'version-header', kind: 'boolean', help: 'also send X-Edgeroute-Version to clients' },
  { name: 'request-log', kind: 'boolean', help: "log every HTTP request and TCP connection (HAProxy's httplog and tcplog, after the worker's PID) at info, where HAProxy's events go (stderr: the journal)" },
  { name: 'upstream-idle-timeout', kind: 'string', default: String(DEFAULT_UPSTREAM_IDLE_TIMEOUT_SECONDS), help: "seconds HAProxy keeps an idle connection to a task at most (it purges idle connections every eighth of this); keep it below the apps' own idle timeout (Node's and uvicorn's 5 s), so that HAProxy closes it first" },
  { name: 'retry-unanswered', kind: 'boolean', help: 'send a request whose task closed the connection without answering (died under it) again, to another task, except POST, PATCH and LOCK, as nginx does; HAProxy then copies every request it sends (about 1-4 µs of CPU per request here)' },
  { name: 'check', kind: 'boolean', help: 'run haproxy -c on what was written; exit 1 when it fails' },
];

export async function haproxyConfCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(HAPROXY_CONF_OPTIONS, argv, process.env, false, 'haproxy-conf');
  if (values.help) {
    console.log(helpText('haproxy-conf', 'Renders templates/haproxy.cfg.hbs into a folder that `haproxy -W -f DIR/haproxy.cfg` runs.', HAPROXY_CONF_OPTIONS));
    return 0;
  }
  const haproxy = stringOption(values, 'haproxy') ?? DEFAULT_HAPROXY_BINARY;
  const unitFile = stringOption(values, 'unit');
  let rendered;
  let unit: string | null = null;
  try {
    rendered = renderHaproxyConf(haproxyConfOptions(values));
    if (unitFile) unit = renderHaproxyUnit({ haproxy, confPath: rendered.confPath, masterSocket: rendered.masterSocket });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
  const tcp = rendered.tcp ? `, ${rendered.tcp.map} (TCP ports ${rendered.tcp.from}-${rendered.tcp.to}, ${rendered.tcp.pool} TCP pool backends)` : '';
  console.log(`wrote ${rendered.confPath} (${rendered.backendPool} pool backends) and ${rendered.hostsMap}${tcp}`);
  if (unitFile && unit !== null) {
    const path = resolve(unitFile);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, unit, { mode: 0o644 });
    chmodSync(path, 0o644);
    console.log(`wrote ${path}`);
  }
  if (values.check) {
    if (!existsSync(haproxy)) {
      console.error(`edgeroute haproxy-conf: ${haproxy} does not exist: install HAProxy (bash scripts/system-deps.sh --runtime-haproxy) or give --haproxy`);
      return 1;
    }
    // Only static settings change here; routing never needs this or a reload.
    const test = await execa(haproxy, ['-c', '-f', rendered.confPath], { reject: false, all: true });
    const report = String(test.all ?? '').trim();
    if (test.exitCode !== 0) {
      console.error(`edgeroute haproxy-conf: haproxy -c failed:\n${report}`);
      return 1;
    }
    console.log(report);
  }
  console.log(`start HAProxy with:\n  ${haproxy} -W -f ${rendered.confPath}`);
  console.log(`and give the agent --haproxy-socket ${rendered.adminSocket}`);
  return 0;
}

/** The renderer's options from the flags (or a config file's "haproxy-conf" section). */
export function haproxyConfOptions(values: OptionValues): HaproxyConfOptions {
  const pool = stringOption(values, 'backend-pool') ?? String(DEFAULT_BACKEND_POOL);
  if (!/^\d+$/.test(pool)) throw new UsageError(`--backend-pool must be a whole number, got "${pool}"`);
  const balancePool = (name: string): number => {
    const raw = stringOption(values, name) ?? String(DEFAULT_BALANCE_POOL);
    if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
    return Number(raw);
  };
  const tcpPool = stringOption(values, 'tcp-backend-pool') ?? String(DEFAULT_TCP_BACKEND_POOL);
  if (!/^\d+$/.test(tcpPool)) throw new UsageError(`--tcp-backend-pool must be a whole number, got "${tcpPool}"`);
  const idle = numberOption(values, 'websocket-idle-timeout', 1);
  if (!Number.isInteger(idle)) throw new UsageError('--websocket-idle-timeout must be whole seconds');
  return {
    outDir: stringOption(values, 'out') ?? '',
    listen: (values.listen as string[] | undefined) ?? [],
    adminSocket: stringOption(values, 'admin-socket'),
    adminSocketGroup: stringOption(values, 'admin-socket-group'),
    tlsListen: (values['tls-listen'] as string[] | undefined) ?? [],
    tlsCert: stringOption(values, 'tls-cert'),
    tlsKey: stringOption(values, 'tls-key'),
    backendPool: Number(pool),
    leastconnPool: balancePool('leastconn-pool'),
    stickyPool: balancePool('sticky-pool'),
    regionHeader: stringOption(values, 'region-header'),
    versionResponseHeader: values['version-header'] === true,
    requestLog: values['request-log'] === true,
    upstreamIdleTimeoutSeconds: numberOption(values, 'upstream-idle-timeout', 0.1),
    retryUnanswered: values['retry-unanswered'] === true,
    tcpPorts: stringOption(values, 'tcp-ports'),
    tcpBackendPool: Number(tcpPool),
    user: stringOption(values, 'user'),
    websocketIdleTimeoutSeconds: idle,
    haproxy: stringOption(values, 'haproxy') ?? DEFAULT_HAPROXY_BINARY,
  };
}
