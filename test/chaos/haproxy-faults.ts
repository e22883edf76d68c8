/**
 * The faults an HAProxy routing node must survive, each done to a
 * HaproxyChaosRig under HTTP keep-alive load and TCP connection load, and
 * the runner that reports what the clients saw.
 */
import { renameSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { waitFor } from '../../agent/sandbox/wait.js';
import type { HaproxyChaosRig } from './haproxy-rig.js';
import { processAlive as alive } from '../helpers/process-alive.js';

export interface HaproxyFaultOutcome {
  readonly note: string;
  /**
   * Failures this fault may cause and why: only a hard restart, whose
   * connections are cut and refused until the new HAProxy listens (never an
   * answer with a wrong status).
   */
  readonly mayFail?: RegExp;
}

export interface HaproxyFault {
  readonly name: string;
  readonly what: string;
  run(rig: HaproxyChaosRig): Promise<HaproxyFaultOutcome>;
}

export interface HaproxyFaultResult {
  readonly fault: string;
  readonly sent: number;
  readonly failed: number;
  /** Failures the fault may cause (connections cut or refused by a restart). */
  readonly allowed: number;
  readonly resent: number;
  readonly tcpSent: number;
  readonly tcpFailed: number;
  readonly failures: readonly string[];
  readonly note: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (text: string, what: string) => text.split(what).length - 1;
const RESTARTED = 'haproxy restarted; pushing the full table';

export const HAPROXY_FAULTS: readonly HaproxyFault[] = [
  {
    name: 'agent kill -9',
    what: 'the agent is killed -9; Marathon scales the app while it is dead; a new agent starts and changes no server that was right',
    async run(rig) {
      const before = await rig.servers();
      const worker = await rig.haproxy.workerPid();
      process.kill(rig.agent.pid, 'SIGKILL');
      const instances = rig.marathon.tasks('/svc').length + 1;
      await rig.marathon.scale('/svc', instances);
      await sleep(1_500);
      rig.respawnAgent();
      await rig.waitHealthy();
      const after = await rig.servers();
      const kept = before.filter((s) => after.includes(s));
      if (kept.length !== before.length) throw new Error(`the restarted agent replaced servers: before ${before.join(' ')}, after ${after.join(' ')}`);
      if (after.length !== before.length + 1) throw new Error(`expected one server more for the new task: ${after.join(' ')}`);
      if ((await rig.haproxy.workerPid()) !== worker) throw new Error('the HAProxy worker changed');
      return { note: `dead 1.5 s, /svc scaled to ${instances} meanwhile; ${before.length} servers kept (same ids), 1 added; worker ${worker} unchanged` };
    },
  },
  {
    name: 'runtime socket gone',
    what: "HAProxy's admin socket disappears (renamed, the agent's session cut) while Marathon scales the app, then comes back",
    async run(rig) {
      const socket = rig.haproxy.socket;
      const away = `${socket}.away`;
      const worker = await rig.haproxy.workerPid();
      renameSync(socket, away);
      try {
        await cutCliSessions(away);
        await waitFor('the agent to log the socket error', () => (/"level":50[^\n]*haproxy admin endpoint unreachable[^\n]*ENOENT/.test(rig.agent.output()) ? true : undefined), 10_000);
        const readyz = await waitFor('/readyz to say so', async () => {
          const r = await rig.readyz();
          return r.status === 503 && r.reasons.some((x) => x.includes('haproxy admin endpoint unreachable') && x.includes(socket)) ? r : undefined;
        }, 10_000);
        const instances = rig.marathon.tasks('/svc').length + 1;
        await rig.marathon.scale('/svc', instances);
        await sleep(2_000);
        renameSync(away, socket);
        await rig.waitHealthy();
        if (!rig.agent.output().includes('haproxy admin endpoint reachable again')) throw new Error('the agent did not say the socket is back');
        if ((await rig.haproxy.workerPid()) !== worker) throw new Error('the HAProxy worker changed');
        return { note: `/readyz: "${readyz.reasons[0]}"; /svc scaled to ${instances} meanwhile, routed once the socket was back` };
      } finally {
        try {
          renameSync(away, socket);
        } catch {
          // back already
        }
      }
    },
  },
  {
    name: 'haproxy seamless reload',
    what: 'HAProxy reloads (SIGUSR2 to the master, as systemctl reload): a new worker from the files the agent keeps in step; the agent notices, re-applies and lets the old worker go',
    async run(rig) {
      const master = rig.masterPid();
      const worker = await rig.haproxy.workerPid();
      const pushes = count(rig.agent.output(), RESTARTED);
      // The agent writes the folder within a second of a change; a reload inside that second starts from the state before it.
      await sleep(1_200);
      const started = Date.now();
      process.kill(master, 'SIGUSR2');
      const next = await waitFor('a new worker', async () => {
        const pid = await rig.haproxy.workerPid().catch(() => worker);
        return pid !== worker ? pid : undefined;
      }, 15_000);
      await waitFor('the agent to notice and re-apply', () => (count(rig.agent.output(), RESTARTED) > pushes ? true : undefined), 10_000);
      const noticed = Date.now() - started;
      await waitFor('the old worker to exit', () => (!alive(worker) ? true : undefined), 15_000);
      if (rig.masterPid() !== master) throw new Error('the master changed: that was a restart');
      return { note: `worker ${worker} → ${next}, master ${master} kept; the agent re-applied within ${noticed} ms; the old worker exited` };
    },
  },
  {
    name: 'haproxy restarted',
    what: 'HAProxy stops and starts again (new master, new worker): it starts from the files the agent keeps in step, the agent notices and re-applies everything',
    async run(rig) {
      const master = rig.masterPid();
      const pushes = count(rig.agent.output(), RESTARTED);
      await sleep(1_200);
      const started = Date.now();
      await rig.haproxy.restart();
      const down = Date.now() - started;
      await waitFor('the agent to notice and re-apply', () => (count(rig.agent.output(), RESTARTED) > pushes ? true : undefined), 10_000);
      if (rig.masterPid() === master) throw new Error('the master did not change');
      return {
        note: `master ${master} → ${rig.masterPid()}, down ${down} ms: connections cut or refused meanwhile, no wrong answer`,
        mayFail: /ECONNREFUSED|ECONNRESET|socket hang up|unexpected reply ""/,
      };
    },
  },
];

/**
 * Every other runtime-API session on the socket, shut: the agent's open
 * connection among them. The listing and the shutdowns go through one
 * session kept open, and only sessions at least a second old are shut: a
 * session that already ended (a one-shot connection's) frees its address,
 * which HAProxy reuses for the next connection, so `shutdown session` on it
 * cut a client's TCP connection once in CI.
 */
async function cutCliSessions(path: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const cli = await InteractiveCli.open(path);
    try {
      const sessions = (await cli.run('show sess'))
        .split('\n')
        .filter((l) => /fe=GLOBAL/.test(l) && !/ age=0s/.test(l))
        .map((l) => l.split(':')[0]!.trim());
      for (const id of sessions) await cli.run(`shutdown session ${id}`);
      if (sessions.length > 0) return;
    } finally {
      cli.close();
    }
    // The agent's session is younger than a second (it just reconnected): ask again once it is not.
    await sleep(1_100);
  }
  throw new Error('no runtime-API session older than a second to cut');
}

/** One runtime-API session in prompt mode: commands one at a time, each reply up to the prompt. */
class InteractiveCli {
  private buffered = '';

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.buffered += d));
  }

  static async open(path: string): Promise<InteractiveCli> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const cli = new InteractiveCli(socket);
    await cli.run('prompt');
    return cli;
  }

  async run(command: string): Promise<string> {
    this.buffered = '';
    this.socket.write(`${command}\n`);
    await waitFor(`the reply to "${command}"`, () => (this.buffered.endsWith('\n> ') || this.socket.closed ? true : undefined), 5_000, 10);
    return this.buffered;
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function runHaproxyFault(rig: HaproxyChaosRig, fault: HaproxyFault): Promise<HaproxyFaultResult> {
  rig.startLoad();
  let outcome: HaproxyFaultOutcome;
  let reports: Awaited<ReturnType<HaproxyChaosRig['stopLoad']>>;
  try {
    await waitFor('load to flow', () => (rig.sent() > 50 ? true : undefined), 20_000);
    outcome = await fault.run(rig);
    await rig.waitHealthy();
    const after = rig.sent();
    await waitFor('load after recovery', () => (rig.sent() > after + 100 ? true : undefined), 20_000);
  } finally {
    reports = await rig.stopLoad();
  }
  const failures = [...(reports.http?.failures ?? []), ...(reports.tcp?.failures ?? []).map((f) => `TCP ${f}`)];
  const failed = (reports.http?.failed ?? 0) + (reports.tcp?.failures.length ?? 0);
  const allowed = outcome.mayFail ? failures.filter((f) => outcome.mayFail!.test(f)).length + Math.max(0, failed - failures.length) : 0;
  return {
    fault: fault.name,
    sent: reports.http?.sent ?? 0,
    failed,
    allowed,
    resent: reports.http?.staleRetries ?? 0,
    tcpSent: reports.tcp?.sent ?? 0,
    tcpFailed: reports.tcp?.failures.length ?? 0,
    failures: failures.slice(0, 10),
    note: outcome.note,
  };
}

export function formatHaproxyResults(results: readonly HaproxyFaultResult[]): string {
  const rows = [['fault', 'HTTP sent', 'TCP sent', 'failed', 'allowed', 'resent', 'note']];
  for (const r of results) rows.push([r.fault, String(r.sent), String(r.tcpSent), String(r.failed), String(r.allowed), String(r.resent), r.note]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
