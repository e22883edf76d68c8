/**
 * An HAProxy routing node for a test: a real HAProxy (master-worker) on what
 * `haproxy-conf` renders, plus an in-process agent with --haproxy-socket whose
 * logs the test reads.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHaproxyConf } from '../../agent/dataplane/haproxy/render.js';
import { HaproxyRuntime } from '../../agent/dataplane/haproxy/runtime-client.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { AGENT_DEFAULTS, startAgent, type AgentOptions, type RunningAgent } from '../../agent/run-agent.js';
import { captureLog, type CapturedLog } from './log-capture.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

/** The agent's reloads of HAProxy so far: its "haproxy reloaded …" log lines. */
export function reloadsLogged(logs: CapturedLog): number {
  return logs.lines().filter((l) => String(l.msg).startsWith('haproxy reloaded')).length;
}

/**
 * The reload count once the agent logged at least `count` (or after
 * `timeoutMs`): it logs a reload after re-applying every app, which can be
 * after a test saw the waiting app answer and the old worker exit.
 */
export async function reloadsOnceLogged(logs: CapturedLog, count: number, timeoutMs = 10_000): Promise<number> {
  await waitFor(`${count} reloads logged`, () => (reloadsLogged(logs) >= count ? true : undefined), timeoutMs).catch(() => undefined);
  return reloadsLogged(logs);
}

/**
 * What to print when a reload count is not what a test expected: the
 * agent's lines about its pool and reloads and its warnings (the last 20),
 * and the end of HAProxy's own log when given. Once, in CI, an agent routed
 * the app that needed a reload and logged no reload within 10 s.
 */
export function reloadStory(logs: CapturedLog, haproxy?: Pick<HaproxyProcess, 'log'>): string {
  const agent = logs
    .lines()
    .filter((l) => Number(l.level) >= 40 || /reload|pool/i.test(String(l.msg)))
    .slice(-20)
    .map((l) => JSON.stringify(l));
  const own = haproxy ? haproxy.log().split('\n').slice(-15) : [];
  return ['the agent logged:', ...agent, ...(own.length > 0 ? ["HAProxy's log ends:", ...own] : [])].join('\n');
}

export interface HaproxyProcess {
  readonly dir: string;
  readonly socket: string;
  readonly publicUrl: string;
  /** The TLS listener's port (haproxy-conf --tls-listen), with HaproxyOptions.tls; null without. */
  readonly tlsPort: number | null;
  /** The worker's PID, from `show info`. */
  workerPid(): Promise<number>;
  /** The master's PID (`haproxy -W`, our child); changes with restart(). */
  masterPid(): number;
  /** What HAProxy wrote on stderr since it started (its log: proxy and worker events). */
  log(): string;
  /** One runtime-API command on a fresh client. */
  runtime(command: string): Promise<string>;
  /** Stops HAProxy and starts it again on the same config (every run-time change is gone). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  backendPool?: number;
  /** haproxy-conf --tcp-ports FROM-TO (bound on 127.0.0.1). */
  tcpPorts?: string;
  tcpBackendPool?: number;
  /** Also listen on [::1] at the same port. */
  ipv6?: boolean;
  /** haproxy-conf --region-header NAME. */
  regionHeader?: string;
  /** haproxy-conf --version-header. */
  versionResponseHeader?: boolean;
  /** haproxy-conf --request-log: every request in log(). */
  requestLog?: boolean;
  /** haproxy-conf --upstream-idle-timeout (s). */
  upstreamIdleTimeoutSeconds?: number;
  /** haproxy-conf --retry-unanswered. */
  retryUnanswered?: boolean;
  /** Rewrites the rendered haproxy.cfg before HAProxy starts (a config from an older haproxy-conf). */
  editConf?: (conf: string) => string;
  /** Listen on this IPv4 loopback address and port (a test where another node has the same port on another address); default 127.0.0.1 and a free port. */
  listenHost?: string;
  port?: number;
  /** haproxy-conf --tls-listen on a free loopback port with this default certificate (--tls-cert, --tls-key). */
  tls?: { cert: string; key: string };
}

export async function startHaproxy(opts: HaproxyOptions = {}): Promise<HaproxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-hanode-'));
  const port = opts.port ?? (await freePort());
  const host = opts.listenHost ?? '127.0.0.1';
  const listen = opts.ipv6 ? [`${host}:${port}`, `[::1]:${port}`] : [`${host}:${port}`];
  const tlsPort = opts.tls ? await freePort() : null;
  const tls = opts.tls && tlsPort !== null ? { tlsListen: [`${host}:${tlsPort}`], tlsCert: opts.tls.cert, tlsKey: opts.tls.key } : {};
  const files = renderHaproxyConf({ outDir: dir, listen, ...tls, backendPool: opts.backendPool ?? 8, tcpPorts: opts.tcpPorts ?? null, ...(opts.tcpBackendPool === undefined ? {} : { tcpBackendPool: opts.tcpBackendPool }), regionHeader: opts.regionHeader ?? null, versionResponseHeader: opts.versionResponseHeader === true, requestLog: opts.requestLog === true, upstreamIdleTimeoutSeconds: opts.upstreamIdleTimeoutSeconds, retryUnanswered: opts.retryUnanswered === true });
  if (opts.editConf) writeFileSync(files.confPath, opts.editConf(readFileSync(files.confPath, 'utf8')));
  let proc: ResultPromise | null = null;
  let stderr = '';
  const launch = async () => {
    rmSync(files.adminSocket, { force: true });
    proc = execa(HAPROXY_BIN, ['-W', '-f', files.confPath], { reject: false, buffer: false });
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.stdout?.resume();
    await waitFor(`HAProxy's admin socket (${stderr})`, () => (existsSync(files.adminSocket) ? true : undefined), 10_000);
    await waitFor('HAProxy to answer', async () => ((await node.runtime('show info')).includes('Pid:') ? true : undefined), 10_000);
  };
  const halt = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await p;
    clearTimeout(timer);
  };
  const node: HaproxyProcess = {
    dir,
    socket: files.adminSocket,
    publicUrl: `http://${host}:${port}`,
    tlsPort,
    async workerPid() {
      return Number(/^Pid: (\d+)/m.exec(await node.runtime('show info'))?.[1]);
    },
    masterPid: () => proc?.pid ?? 0,
    log: () => stderr,
    async runtime(command) {
      const client = new HaproxyRuntime(files.adminSocket, 5_000);
      try {
        return await client.one(command);
      } finally {
        client.close();
      }
    },
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await launch();
  return node;
}

export interface HaproxyRoutingNode {
  readonly haproxy: HaproxyProcess;
  agent: RunningAgent;
  logs: CapturedLog;
  /** Stops the agent and starts a fresh one (new memory, same flags). */
  restartAgent(): Promise<void>;
  stop(): Promise<void>;
}

/** `agentOptions` may depend on HAProxy's folder (haproxyConfDir: haproxy.dir). */
export async function startHaproxyRoutingNode(
  marathonUrls: string,
  agentOptions: Partial<AgentOptions> | ((haproxy: HaproxyProcess) => Partial<AgentOptions>) = {},
  haproxyOptions: HaproxyOptions = {},
): Promise<HaproxyRoutingNode> {
  const haproxy = await startHaproxy(haproxyOptions);
  const extra = typeof agentOptions === 'function' ? agentOptions(haproxy) : agentOptions;
  const launch = () => {
    const logs = captureLog();
    const agent = startAgent(
      { ...AGENT_DEFAULTS, marathon: marathonUrls, nginxAdmin: '', haproxySocket: haproxy.socket, adminToken: 'an-api-token-of-16-chars', redis: null, group: null, ...extra },
      logs.log,
    );
    return { agent, logs };
  };
  const node: HaproxyRoutingNode = {
    haproxy,
    ...launch(),
    async restartAgent() {
      await node.agent.stop();
      Object.assign(node, launch());
    },
    async stop() {
      await node.agent.stop();
      await haproxy.stop();
    },
  };
  return node;
}
