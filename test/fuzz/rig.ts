/**
 * The processes the nginx targets fuzz: Redis, a Marathon simulator, a
 * routing node (nginx with the plugin and an in-process agent with its API),
 * and a second nginx without an agent for the push target (a fuzzed push
 * that happens to be valid replaces that node's table, and no agent should
 * fight over it). Also the checks every nginx target shares: workers alive
 * and unchanged, an error log without crashes.
 */
import { Redis } from 'ioredis';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { PATH_APPS, PATHS_HOST } from './path-oracle.js';
import type { TargetRun } from './summary.js';

export interface FuzzRig {
  readonly redis: RedisServer;
  readonly redisClient: Redis;
  readonly marathon: MarathonSim;
  /** nginx with the plugin, fed by an agent that listens for its API on a free port. */
  readonly node: RoutingNode;
  /** nginx with the plugin and no agent: the push target's own. */
  readonly pushNginx: NginxNode;
  /** A single-version app that must keep routing whatever is fuzzed. */
  readonly good: { readonly host: string; readonly appId: string; readonly taskIds: readonly string[] };
  /** A two-version app (stable, grey) split by the policies under test. */
  readonly shop: { readonly host: string; readonly app: string; readonly stableIds: readonly string[]; readonly greyIds: readonly string[] };
  /** Apps sharing one host by path prefix (path-oracle.ts's PATH_APPS, from their labels): Marathon app id → task ids. */
  readonly paths: { readonly host: string; readonly taskIds: ReadonlyMap<string, readonly string[]> };
  stop(): Promise<void>;
}

/** What a fuzz target that needs the rig is run with. */
export interface RigTargetRun extends TargetRun {
  readonly rig: FuzzRig;
}

export const GOOD_HOST = 'good.fuzz';
export const SHOP_HOST = 'shop.fuzz';
export const SHOP_APP = 'fuzz-shop';

export async function startFuzzRig(): Promise<FuzzRig> {
  const started: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
  };
  try {
    const redis = await startRedis();
    started.push(() => redis.stop());
    const redisClient = new Redis(redis.url);
    started.push(async () => redisClient.disconnect());
    const marathon = await MarathonSim.start({ heartbeatMs: 1_000 });
    started.push(() => marathon.stop());
    const node = await startRoutingNode(marathon.url, { redis: redis.url, listen: '127.0.0.1:0' }, { redis: redis.url, versionResponseHeader: true, policyRefreshSeconds: 0.5 });
    started.push(() => node.stop());
    const pushNginx = await startNginxNode({ workerProcesses: 2 });
    started.push(() => pushNginx.process.stop());
    await node.agent.ready;

    const goodTasks = await marathon.deploy({ id: '/fuzz-good', instances: 2, labels: { 'edgeroute.vhosts': GOOD_HOST } });
    const shopLabels = (version: string) => ({ 'edgeroute.vhosts': SHOP_HOST, 'edgeroute.app': SHOP_APP, 'edgeroute.version': version });
    const stable = await marathon.deploy({ id: '/fuzz-shop-stable', instances: 1, labels: shopLabels('stable') });
    const grey = await marathon.deploy({ id: '/fuzz-shop-grey', instances: 1, labels: shopLabels('grey') });
    const pathTasks = new Map<string, string[]>();
    for (const app of PATH_APPS) pathTasks.set(app.id, (await marathon.deploy({ id: app.id, instances: 1, labels: { ...app.labels } })).map((t) => t.id));
    const good = { host: GOOD_HOST, appId: '/fuzz-good', taskIds: goodTasks.map((t) => t.id) };
    await waitForBackends(node.nginx.publicUrl, GOOD_HOST, good.taskIds);
    await waitForBackends(node.nginx.publicUrl, SHOP_HOST, stable.map((t) => t.id));
    return {
      redis,
      redisClient,
      marathon,
      node,
      pushNginx,
      good,
      shop: { host: SHOP_HOST, app: SHOP_APP, stableIds: stable.map((t) => t.id), greyIds: grey.map((t) => t.id) },
      paths: { host: PATHS_HOST, taskIds: pathTasks },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Reads what a log file gained since the last read: the targets watch error.log without reading it whole each time. */
export class LogTail {
  private offset: number;
  private pending = '';

  constructor(private readonly path: string) {
    this.offset = sizeOf(path);
  }

  static errorLogOf(nginx: NginxNode): LogTail {
    return new LogTail(join(nginx.prefix, 'logs', 'error.log'));
  }

  /** Whole lines written since the last call. */
  lines(): string[] {
    const size = sizeOf(this.path);
    if (size > this.offset) {
      const fd = openSync(this.path, 'r');
      try {
        const buffer = Buffer.alloc(size - this.offset);
        readSync(fd, buffer, 0, buffer.length, this.offset);
        this.offset = size;
        this.pending += buffer.toString('utf8');
      } finally {
        closeSync(fd);
      }
    }
    const parts = this.pending.split('\n');
    this.pending = parts.pop() ?? '';
    return parts;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Lines that mean a worker died or a Lua handler broke. */
const CRASH_LINE = /exited on signal|worker process \d+ exited|core dumped|\[alert\]|\[crit\]|\[emerg\]|runtime error|entry thread aborted|sync failed|refresh failed|stack traceback/;

export function crashLines(lines: readonly string[]): string[] {
  return lines.filter((line) => CRASH_LINE.test(line));
}

/** Watches one nginx while a target runs: its workers must stay the same processes, its error log free of crashes. */
export class NginxWatch {
  private readonly workers: string;
  readonly tail: LogTail;
  /** Every error-log line seen, for the target to search. */
  readonly seen: string[] = [];

  constructor(private readonly nginx: NginxNode) {
    this.workers = nginx.process.workerPids().join(',');
    this.tail = LogTail.errorLogOf(nginx);
  }

  /** New error-log lines since the last call (also kept in `seen`). */
  read(): string[] {
    const lines = this.tail.lines();
    this.seen.push(...lines);
    return lines;
  }

  /** What went wrong since the last check: crash lines, and workers that are not the ones there at the start. */
  check(): string[] {
    const problems = crashLines(this.read()).map((line) => `error.log: ${line.slice(0, 400)}`);
    const now = this.nginx.process.workerPids().join(',');
    if (now !== this.workers) problems.push(`nginx workers changed from [${this.workers}] to [${now}]`);
    return problems;
  }
}

/**
 * Reads new error-log lines until one matches; null after `timeoutMs`.
 * Lines read on the way stay in `watch.seen`.
 */
export async function waitForLogLine(watch: NginxWatch, matches: (line: string) => boolean, timeoutMs = 5_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = watch.read().find(matches);
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** nginx starts every error-log line with its date; a line without one was split by a newline in logged input. */
export function isLogLineStart(line: string): boolean {
  return /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} \[/.test(line);
}

/**
 * A request to the good app; null when a task of it answered. Tried a few
 * times over 200 ms: a table pushed a moment ago reaches every worker within
 * its sync interval, not at once.
 */
export async function goodAppProblem(publicUrl: string, host: string, taskIds: readonly string[]): Promise<string | null> {
  let problem: string | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const reply = await httpGet(`${publicUrl}/`, { host, timeoutMs: 5_000 });
      if (reply.status === 200 && taskIds.includes(reply.body)) return null;
      problem = `${host} answered ${reply.status} ${reply.body.slice(0, 120)}`;
    } catch (err) {
      problem = `${host} did not answer: ${(err as Error).message}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return problem;
}

/** The agent's API answers /healthz. */
export async function agentHealthProblem(node: RoutingNode): Promise<string | null> {
  if (!node.agent.apiUrl) return 'the agent has no API URL';
  try {
    const reply = await httpGet(`${node.agent.apiUrl}/healthz`, { timeoutMs: 5_000 });
    return reply.status === 200 ? null : `agent /healthz answered ${reply.status}`;
  } catch (err) {
    return `agent /healthz did not answer: ${(err as Error).message}`;
  }
}
