/**
 * A whole routing node on loopback: Redis, nginx with the plugin, a Marathon
 * simulator and the agent. The demo runs one; the integration tests run them too.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { defaultNginxBinary } from '../dataplane/nginx/conf/flavor.js';
import { renderNginxConf, type NginxConfOptions } from '../dataplane/nginx/conf/render.js';
import { AGENT_DEFAULTS, startAgent, type AgentOptions, type RunningAgent } from '../run-agent.js';
import { freePort } from './free-port.js';
import { startNginx, type NginxProcess } from './nginx-process.js';
import { startRedis, type RedisServer } from './redis-server.js';

export interface NginxNode {
  readonly publicUrl: string;
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly prefix: string;
  readonly snapshotFile: string | null;
  /** The public TLS port on 127.0.0.1 (with the `tls` option); null: none. */
  readonly tlsPort: number | null;
  /** The running nginx; replaced by restart(). Its stop() also removes the prefix. */
  process: NginxProcess;
  /** Stops nginx and starts it again from the same files (not a reload). */
  restart(): Promise<void>;
}

export interface NginxNodeOptions {
  readonly workerProcesses?: number;
  readonly publicPort?: number;
  readonly redis?: string;
  /** CA bundle for a rediss:// `redis` (the sandbox Redis's caFile). */
  readonly redisCa?: string;
  /** The name Redis's certificate must carry; default: the URL's IP. */
  readonly redisTlsName?: string;
  readonly redisPrefix?: string;
  /** Find Redis through Sentinel instead of `redis` (nginx-conf's --redis-sentinels and --redis-master). */
  readonly redisSentinel?: NginxConfOptions['redisSentinel'];
  readonly regionVar?: string;
  readonly versionResponseHeader?: boolean;
  readonly policyRefreshSeconds?: number;
  /** Also listen on [::1] at the same port. */
  readonly ipv6?: boolean;
  /** Default info, so tests can read what the plugin logs. */
  readonly errorLogLevel?: string;
  /** Let nginx daemonize (needed for a restart with USR2, see NginxProcess.upgrade). */
  readonly daemon?: boolean;
  /** lua_shared_dict size, default 64m (a small one shows what happens when it is full). */
  readonly dictSize?: string;
  /** Also listen with TLS on a free port, with this static certificate (nginx-conf's --tls-cert/--tls-key). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** nginx-conf's --max-body-size; default none. */
  readonly maxBodySize?: string;
  /** nginx-conf's --websocket-idle-timeout. */
  readonly websocketIdleTimeoutSeconds?: number;
  /** nginx-conf's --upstream-idle-timeout. */
  readonly upstreamIdleTimeoutSeconds?: number;
  /** Rewrites the rendered nginx.conf before nginx starts (benchmarks switch parts of the request path off). */
  readonly editConf?: (conf: string) => string;
}

export async function startNginxNode(opts: NginxNodeOptions = {}): Promise<NginxNode> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-nginx-'));
  // mkdtemp makes it 0700; under root the workers are `nobody` and must reach temp/ to buffer a
  // request body larger than client_body_buffer_size (else a 500). The admin token stays 0600.
  chmodSync(prefix, 0o755);
  const publicPort = opts.publicPort ?? (await freePort());
  const adminPort = await freePort();
  const tlsPort = opts.tls ? await freePort() : null;
  const rendered = renderNginxConf({
    outDir: prefix,
    listen: opts.ipv6 ? [`127.0.0.1:${publicPort}`, `[::1]:${publicPort}`] : [`127.0.0.1:${publicPort}`],
    adminListen: [`127.0.0.1:${adminPort}`],
    workerProcesses: opts.workerProcesses ?? 2,
    errorLogLevel: opts.errorLogLevel ?? 'info',
    redis: opts.redis ?? null,
    redisCa: opts.redisCa ?? null,
    redisTlsName: opts.redisTlsName ?? null,
    redisSentinel: opts.redisSentinel ?? null,
    redisPrefix: opts.redisPrefix,
    regionVar: opts.regionVar ?? null,
    versionResponseHeader: opts.versionResponseHeader,
    policyRefreshSeconds: opts.policyRefreshSeconds,
    dictSize: opts.dictSize,
    tlsListen: tlsPort === null ? [] : [`127.0.0.1:${tlsPort}`],
    tlsCert: opts.tls?.cert ?? null,
    tlsKey: opts.tls?.key ?? null,
    maxBodySize: opts.maxBodySize,
    websocketIdleTimeoutSeconds: opts.websocketIdleTimeoutSeconds,
    upstreamIdleTimeoutSeconds: opts.upstreamIdleTimeoutSeconds,
  });
  if (opts.editConf) writeFileSync(rendered.confPath, opts.editConf(readFileSync(rendered.confPath, 'utf8')));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const launch = async () => {
    const process = await startNginx({ binary: defaultNginxBinary(rendered.flavor), prefix, confPath: rendered.confPath, adminUrl, daemon: opts.daemon });
    return {
      get masterPid() {
        return process.masterPid;
      },
      upgrade: () => process.upgrade(),
      reload: () => process.reload(),
      workerPids: () => process.workerPids(),
      errorLog: () => process.errorLog(),
      async stop() {
        await process.stop();
        rmSync(prefix, { recursive: true, force: true });
      },
      raw: process,
    };
  };
  let current = await launch();
  const node: NginxNode = {
    publicUrl: `http://127.0.0.1:${publicPort}`,
    adminUrl,
    adminToken: rendered.adminToken,
    prefix,
    snapshotFile: rendered.snapshotFile,
    tlsPort,
    process: current,
    async restart() {
      await current.raw.stop();
      current = await launch();
      node.process = current;
    },
  };
  return node;
}

export interface Sandbox {
  readonly redis: RedisServer;
  readonly nginx: NginxNode;
  readonly marathon: MarathonSim;
  readonly agent: RunningAgent;
  stop(): Promise<void>;
}

export async function startSandbox(log: Logger, opts: { publicPort?: number; agent?: Partial<AgentOptions> } = {}): Promise<Sandbox> {
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const item of started.reverse()) await item.stop().catch(() => undefined);
  };
  try {
    const redis = await startRedis();
    started.push(redis);
    const nginx = await startNginxNode({ publicPort: opts.publicPort, redis: redis.url, versionResponseHeader: true });
    started.push(nginx.process);
    const marathon = await MarathonSim.start();
    started.push(marathon);
    const agent = startAgent(
      {
        marathon: marathon.url,
        nginxAdmin: nginx.adminUrl,
        adminToken: nginx.adminToken,
        redis: redis.url,
        group: null,
        ...AGENT_DEFAULTS,
        listen: '127.0.0.1:0',
        ...opts.agent,
      },
      log,
    );
    started.push(agent);
    await agent.ready;
    return { redis, nginx, marathon, agent, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
