/**
 * A routing node of either data plane, driven by the agent, behind one
 * interface: the integration tests of routing, lifecycle, drain and split run
 * one test body over both rigs (`describe.each(RIGS)`), through real nginx
 * and real HAProxy processes.
 *
 * A rig starts the data plane alone (`startDataPlane`: the agent options and
 * the `edgeroute agent` flags that point at it, its PIDs, its own log); a
 * node is that data plane plus an in-process agent whose logs the test reads
 * (`startRigNode`), or a test spawns the real CLI with `agentFlags`.
 * Everything a rig starts it stops by PID.
 *
 * What the two data planes do in their own documented way is data on the rig
 * (`rig.differs`), so a shared test asserts each one's behaviour rather than
 * skipping one of them.
 */
import { startNginxNode, type NginxNode, type NginxNodeOptions } from '../../agent/sandbox/sandbox.js';
import type { RedisTarget } from '../../agent/fleet/redis-target.js';
import { serverName } from '../../agent/dataplane/haproxy/runtime-plan.js';
import { AGENT_DEFAULTS, startAgent, type AgentOptions, type RunningAgent } from '../../agent/run-agent.js';
import { startHaproxy, type HaproxyProcess } from './haproxy-node.js';
import { captureLog, type CapturedLog } from './log-capture.js';

export type DataPlaneKind = 'nginx' | 'haproxy';

/** The data plane's processes: nginx's master and workers, HAProxy's master (`haproxy -W`) and its worker. */
export interface DataPlanePids {
  readonly master: number;
  readonly workers: readonly number[];
}

export interface DataPlaneOptions {
  /**
   * Redis holding split policies. nginx's plugin reads it itself (nginx-conf
   * --redis); on an HAProxy node the agent reads it (its --redis, set here
   * unless the node's agent options name one) and hands the compiled
   * policies to HAProxy's Lua action.
   */
  readonly policyRedis?: string;
  /**
   * The same, found through Redis Sentinel (not with `policyRedis`): nginx's
   * plugin asks the sentinels itself (nginx-conf --redis-sentinels); an
   * HAProxy node's agent gets the Sentinel target as its --redis.
   */
  readonly policySentinel?: NonNullable<NginxNodeOptions['redisSentinel']>;
  /** How often nginx's plugin reads the policies, s (nginx-conf --policy-refresh; default 0.5). */
  readonly policyRefreshSeconds?: number;
  /** Also send X-Edgeroute-Version to clients (nginx-conf and haproxy-conf --version-header). */
  readonly versionResponseHeader?: boolean;
  /** The request header holding the client's region, a CDN's (nginx-conf --region-var http_NAME, haproxy-conf --region-header NAME). */
  readonly regionHeader?: string;
  /** Also listen on [::1] at the same port (HAProxy: a second bind). */
  readonly ipv6?: boolean;
  /** HAProxy's --retry-unanswered (nginx always sends a request its task did not answer again, unless POST, PATCH or LOCK). */
  readonly retryUnanswered?: boolean;
  /** nginx's worker_processes (default 2); HAProxy runs one worker. */
  readonly workerProcesses?: number;
  /** HAProxy's pool of pre-declared backends (haproxy-conf --backend-pool, default 16). */
  readonly backendPool?: number;
  /** HAProxy's TCP port range, `FROM-TO` (haproxy-conf --tcp-ports) and its pool of TCP backends; nginx routes no TCP and ignores them. */
  readonly tcpPorts?: string;
  readonly tcpBackendPool?: number;
}

/** A running data plane, not yet driven by any agent. */
export interface DataPlaneUnderTest {
  readonly kind: DataPlaneKind;
  /** Its public HTTP listener. */
  readonly publicUrl: string;
  /** What points an in-process agent at it (and, on HAProxy, at the policies' Redis). */
  readonly agentOptions: Pick<AgentOptions, 'nginxAdmin' | 'haproxySocket' | 'adminToken'> & Partial<Pick<AgentOptions, 'redis'>>;
  /** What points `edgeroute agent` at it: flags and environment. */
  readonly agentFlags: { readonly args: readonly string[]; readonly env: Readonly<Record<string, string>> };
  pids(): Promise<DataPlanePids>;
  /** Its own log: nginx's error.log, HAProxy's stderr. */
  log(): string;
  /** For assertions about one data plane only; null on the other. */
  readonly nginx: NginxNode | null;
  readonly haproxy: HaproxyProcess | null;
  stop(): Promise<void>;
}

export interface DataPlaneRig {
  readonly kind: DataPlaneKind;
  /** What this data plane does its own (documented) way. */
  readonly differs: {
    /** The body of the 503 for an app without published tasks. */
    readonly noBackendBody: RegExp;
    /** What the agent logs when it applied a whole table. */
    readonly pushedMessage: string;
    /** Lines of the data plane's log that mean a worker died or was replaced (a reload). */
    readonly workerReplaced: RegExp;
    /**
     * A request is routed once its headers are in (HAProxy), not once its
     * body is (nginx's access phase runs before the body is read, its peer
     * is picked after): an upload under way when its task is drained still
     * finishes on that task, and the drain waits for it.
     */
    readonly serverPickedBeforeBody: boolean;
    /**
     * When a task dies under a request that came on a reused client
     * connection, HAProxy closes that connection without an answer (as if
     * it had been idle) instead of answering 502, so a client that resends
     * on a stale keep-alive connection (browsers, OkHttp, the load helper)
     * sends it again, a POST included. nginx answers 502 (and sends any
     * other method than POST, PATCH and LOCK to another task, as HAProxy
     * does with --retry-unanswered).
     */
    readonly cutRequestClosesSilently: boolean;
    /**
     * Who reads split policies from Redis, and so reports a refused policy
     * and Redis going away: nginx's plugin, in the data plane's log (plus
     * its admin /edgeroute/status), or, on HAProxy nodes, the agent, in its
     * own log (HAProxy's Lua only ever gets a policy that passed, in
     * rules.map). The lines say Redis is away (splitting goes on with the
     * last good policies) and back.
     */
    readonly policyReader: { readonly reportsIn: 'data plane' | 'agent'; readonly redisLost: string; readonly redisBack: string };
  };
  /**
   * What this data plane should do like the other but does not yet: the
   * shared test runs as `it.fails` for it, so it turns red (flip the flag)
   * the day the gap is closed, and never passes by being skipped.
   */
  readonly gaps: {
    /**
     * `*.example.com` vhosts (closed on HAProxy nodes: wildcards.map sends
     * them to the Lua action, which picks the longest wildcard as nginx does).
     */
    readonly wildcardVhosts: boolean;
  };
  startDataPlane(opts?: DataPlaneOptions): Promise<DataPlaneUnderTest>;
  /**
   * The weight each task's server has in the data plane now, for the tasks
   * given (HAProxy: `show servers state`, 1-256); null where the data plane
   * does not show weights per task (nginx's table is inside the plugin).
   */
  taskWeights(dataPlane: DataPlaneUnderTest, tasks: ReadonlyArray<{ readonly id: string; readonly host: string; readonly port: number }>): Promise<Map<string, number> | null>;
}

/** The token an HAProxy node's agent API takes (it has no nginx admin token to fall back on). */
const HAPROXY_API_TOKEN = 'an-api-token-of-16-chars';

export const NGINX_RIG: DataPlaneRig = {
  kind: 'nginx',
  differs: {
    noBackendBody: /no backend/,
    pushedMessage: 'pushed routing table to nginx',
    workerReplaced: /signal \d+|worker process \d+ exited/,
    serverPickedBeforeBody: false,
    cutRequestClosesSilently: false,
    policyReader: { reportsIn: 'data plane', redisLost: 'splitting goes on with the last good policies', redisBack: 'redis reachable again' },
  },
  gaps: { wildcardVhosts: false },
  async startDataPlane(opts = {}) {
    const nginx = await startNginxNode({
      workerProcesses: opts.workerProcesses ?? 2,
      ...(opts.policyRedis === undefined ? {} : { redis: opts.policyRedis }),
      ...(opts.policySentinel === undefined ? {} : { redisSentinel: opts.policySentinel }),
      ...(opts.policyRefreshSeconds === undefined ? {} : { policyRefreshSeconds: opts.policyRefreshSeconds }),
      ...(opts.regionHeader === undefined ? {} : { regionVar: `http_${opts.regionHeader.toLowerCase().replace(/-/g, '_')}` }),
      ...(opts.versionResponseHeader === undefined ? {} : { versionResponseHeader: opts.versionResponseHeader }),
      ...(opts.ipv6 === undefined ? {} : { ipv6: opts.ipv6 }),
    });
    return {
      kind: 'nginx',
      publicUrl: nginx.publicUrl,
      agentOptions: { nginxAdmin: nginx.adminUrl, haproxySocket: null, adminToken: nginx.adminToken },
      agentFlags: { args: ['--nginx-admin', nginx.adminUrl], env: { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken } },
      pids: async () => ({ master: nginx.process.masterPid, workers: nginx.process.workerPids() }),
      log: () => nginx.process.errorLog(),
      nginx,
      haproxy: null,
      stop: () => nginx.process.stop(),
    };
  },
  taskWeights: async () => null,
};

export const HAPROXY_RIG: DataPlaneRig = {
  kind: 'haproxy',
  differs: {
    noBackendBody: /No server is available to handle this request/,
    pushedMessage: 'pushed routing table to haproxy',
    // The master logs "Current worker (PID) exited with code ..." when its worker dies; a reload
    // logs "Reexecuting Master process", forks a second "New worker" and lets the former one exit.
    workerReplaced: /worker \(\d+\) exited|Reexecuting Master process|New worker[\s\S]*New worker/,
    serverPickedBeforeBody: true,
    cutRequestClosesSilently: true,
    // RedisLink's lines; the policy feed keeps every last good policy meanwhile.
    policyReader: { reportsIn: 'agent', redisLost: 'redis connection lost; retrying', redisBack: 'redis connected' },
  },
  gaps: { wildcardVhosts: false },
  async startDataPlane(opts = {}) {
    const haproxy = await startHaproxy({
      backendPool: opts.backendPool ?? 16,
      ...(opts.tcpPorts === undefined ? {} : { tcpPorts: opts.tcpPorts }),
      ...(opts.tcpBackendPool === undefined ? {} : { tcpBackendPool: opts.tcpBackendPool }),
      ...(opts.ipv6 === undefined ? {} : { ipv6: opts.ipv6 }),
      ...(opts.regionHeader === undefined ? {} : { regionHeader: opts.regionHeader }),
      ...(opts.versionResponseHeader === undefined ? {} : { versionResponseHeader: opts.versionResponseHeader }),
      ...(opts.retryUnanswered === undefined ? {} : { retryUnanswered: opts.retryUnanswered }),
    });
    const sentinel = opts.policySentinel;
    const policyRedis: string | RedisTarget | undefined = sentinel
      ? { kind: 'sentinel', sentinels: sentinel.sentinels, master: sentinel.master, user: sentinel.user, password: sentinel.password, sentinelPassword: sentinel.sentinelPassword, tls: false, caFile: null }
      : opts.policyRedis;
    return {
      kind: 'haproxy',
      publicUrl: haproxy.publicUrl,
      // The agent reads the policies (with its --redis) and hands them to the Lua action.
      agentOptions: { nginxAdmin: '', haproxySocket: haproxy.socket, adminToken: HAPROXY_API_TOKEN, ...(policyRedis === undefined ? {} : { redis: policyRedis }) },
      agentFlags: {
        args: ['--haproxy-socket', haproxy.socket, ...(opts.policyRedis === undefined ? [] : ['--redis', opts.policyRedis])],
        env: { EDGEROUTE_API_TOKEN: HAPROXY_API_TOKEN, EDGEROUTE_ADMIN_TOKEN: '' },
      },
      pids: async () => ({ master: haproxy.masterPid(), workers: [await haproxy.workerPid()] }),
      log: () => haproxy.log(),
      nginx: null,
      haproxy,
      stop: () => haproxy.stop(),
    };
  },
  async taskWeights(dataPlane, tasks) {
    const byName = new Map(tasks.map((t) => [serverName(t.id, t.host, t.port), t.id]));
    const weights = new Map<string, number>();
    // show servers state: "be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight ..."
    for (const line of (await dataPlane.haproxy!.runtime('show servers state')).split('\n')) {
      const f = line.trim().split(/\s+/);
      const task = byName.get(f[3] ?? '');
      if (task !== undefined) weights.set(task, Number(f[7]));
    }
    return weights;
  },
};

/** Both data planes: `describe.each(RIGS)('... ($kind)', (rig) => ...)`. */
export const RIGS: readonly DataPlaneRig[] = [NGINX_RIG, HAPROXY_RIG];

/** A data plane with an in-process agent driving it. */
export interface RigNode {
  readonly kind: DataPlaneKind;
  readonly rig: DataPlaneRig;
  readonly dataPlane: DataPlaneUnderTest;
  readonly publicUrl: string;
  agent: RunningAgent;
  logs: CapturedLog;
  pids(): Promise<DataPlanePids>;
  /** Stops the agent and starts a fresh one (new memory, same flags). */
  restartAgent(overrides?: Partial<AgentOptions>): Promise<void>;
  /** The agent, then the data plane. */
  stop(): Promise<void>;
}

export async function startRigNode(rig: DataPlaneRig, marathonUrls: string, agentOptions: Partial<AgentOptions> = {}, dataPlaneOptions: DataPlaneOptions = {}): Promise<RigNode> {
  const dataPlane = await rig.startDataPlane(dataPlaneOptions);
  const launch = (overrides: Partial<AgentOptions>) => {
    const logs = captureLog();
    const agent = startAgent({ ...AGENT_DEFAULTS, marathon: marathonUrls, redis: null, group: null, ...dataPlane.agentOptions, ...agentOptions, ...overrides }, logs.log);
    return { agent, logs };
  };
  const node: RigNode = {
    kind: rig.kind,
    rig,
    dataPlane,
    publicUrl: dataPlane.publicUrl,
    ...launch({}),
    pids: () => dataPlane.pids(),
    async restartAgent(overrides = {}) {
      await node.agent.stop();
      Object.assign(node, launch(overrides));
    },
    async stop() {
      await node.agent.stop();
      await dataPlane.stop();
    },
  };
  return node;
}

