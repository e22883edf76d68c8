// Announce before kill, as ops run it: the edgeroute CLI against two routing
// nodes (two data planes of one kind, two agents) sharing one Redis and one
// Marathon, with load on both nodes. Requests are slow (150 ms), so several
// are always in flight on every task: a task killed before every node stopped
// routing to it and finished its requests loses some (the control test shows
// it does). One test body for both data planes: announce-before-kill.test.ts
// runs it on nginx nodes, announce-before-kill-haproxy.test.ts on HAProxy nodes.
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startLoad, type RunningLoad, type LoadReport } from '../helpers/load.js';
import { startRigNode, type DataPlanePids, type DataPlaneRig, type RigNode } from '../helpers/data-plane-rig.js';
import { spawnAgent } from '../helpers/agent-process.js';
import { waitForBackends } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const SLOW = '/slow/150';

export function announceBeforeKill(rig: DataPlaneRig): void {
  let redis: RedisServer;
  let marathon: MarathonSim;
  let nodes: RigNode[];
  let scratch: string;

  beforeAll(async () => {
    redis = await startRedis();
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    nodes = [];
    for (const nodeId of ['edge-a', 'edge-b']) {
      // nginx nodes read split policies from the same Redis (rollout needs them); HAProxy nodes do not evaluate policies yet.
      nodes.push(await startRigNode(rig, marathon.url, { redis: redis.url, listen: '127.0.0.1:0', nodeId }, { policyRedis: redis.url }));
    }
    await waitFor('both nodes in the fleet', async () => ((await fleet()).filter((n) => n.live).length === 2 ? true : undefined));
    scratch = mkdtempSync(join(tmpdir(), 'edgeroute-abk-'));
  }, 60_000);

  afterAll(async () => {
    for (const node of nodes ?? []) await node.stop();
    await marathon?.stop();
    await redis?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function fleet(): Promise<Array<{ nodeId: string; live: boolean }>> {
    const res = await fetch(`${nodes[0]?.agent.apiUrl}/v1/nodes`);
    return ((await res.json()) as { nodes: Array<{ nodeId: string; live: boolean }> }).nodes;
  }

  function edgeroute(args: string[], opts: { timeoutMs?: number } = {}) {
    return execa(process.execPath, [BIN, ...args, '--marathon', marathon.url, '--redis', redis.url], {
      reject: false,
      all: true,
      timeout: opts.timeoutMs ?? 120_000,
      env: { EDGEROUTE_ADMIN_TOKEN: '' },
    });
  }

  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
  /** Requests the tasks were still serving when they died: lost, whatever the client then saw. */
  const cutAt = (ids: readonly string[]) => ids.reduce((n, id) => n + Object.values(marathon.taskStats(id)?.cutOff ?? {}).reduce((a, b) => a + b, 0), 0);

  async function deployed(id: string, host: string, instances: number, labels: Record<string, string> = {}): Promise<string[]> {
    await marathon.deploy({ id, instances, labels: { 'edgeroute.vhosts': host, ...labels } });
    for (const node of nodes) await waitForBackends(node.publicUrl, host, taskIds(id));
    return taskIds(id);
  }

  /** Load on every node at once. */
  function loadEverywhere(host: string): RunningLoad[] {
    return nodes.map((node) => startLoad(node.publicUrl, host, { concurrency: 6, path: SLOW }));
  }

  /** Sends a POST's headers and half its body; the returned function sends the rest and reads the answer. */
  async function startUpload(port: number, host: string): Promise<() => Promise<{ status: number; body: string }>> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345`);
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Let nginx run the access phase for it before the drain.
    await new Promise((r) => setTimeout(r, 200));
    return async () => {
      // Not end(): nginx takes a half-closed client for one that went away.
      socket.write('67890');
      await closed;
      const [head = '', body = ''] = reply.split('\r\n\r\n');
      return { status: Number(head.split(' ')[1]), body };
    };
  }

  async function stopAll(loads: RunningLoad[]): Promise<LoadReport[]> {
    return Promise.all(loads.map((l) => l.stop()));
  }

  async function flowing(loads: RunningLoad[]): Promise<void> {
    const start = loads.map((l) => l.sent());
    await waitFor('traffic on every node', () => (loads.every((l, i) => l.sent() > (start[i] ?? 0) + 40) ? true : undefined), 20_000);
  }

  async function pids(): Promise<DataPlanePids[]> {
    return Promise.all(nodes.map((node) => node.pids()));
  }

  describe(`announce before kill (${rig.kind})`, () => {
    it('control: killing tasks in Marathon without a drain loses in-flight requests', async () => {
      const ids = await deployed('/control', 'control.test', 4);
      const loads = loadEverywhere('control.test');
      await flowing(loads);
      // Both victims serve a POST at the moment they die (the kill closes them within this tick): a cut
      // GET is retried on another task by nginx, a cut POST never is, so only a POST must be lost.
      // (HAProxy closes a cut request's client silently and the load resends it, whatever its method.)
      const method = rig.differs.cutRequestClosesSilently ? undefined : 'POST';
      const serving = (id: string) => Object.entries(marathon.taskStats(id)?.inflight ?? {}).some(([m, n]) => n > 0 && (method === undefined || m === method));
      // The two victims are whichever tasks serve one now: the load alternates GET and POST and the
      // round-robin can fall in step with it, so that two tasks only ever get GETs.
      const victims = await waitFor(`${method ?? 'a request'} in flight on two tasks`, () => {
        const busy = ids.filter(serving);
        return busy.length >= 2 ? busy.slice(0, 2) : undefined;
      }, 20_000);
      await Promise.all(victims.map((id) => marathon.killTask(id, { replace: false })));
      await new Promise((r) => setTimeout(r, 500));
      const reports = await stopAll(loads);
      expect(cutAt(victims)).toBeGreaterThan(0);
      if (!rig.differs.cutRequestClosesSilently) {
        expect(reports.reduce((n, r) => n + r.failed, 0)).toBeGreaterThan(0);
      } else {
        // HAProxy closed those clients' connections without an answer; the load resent them.
        expect(reports.reduce((n, r) => n + r.failed + r.staleRetries, 0)).toBeGreaterThan(0);
      }
      await marathon.removeApp('/control');
    }, 60_000);

    it('scale-in drains the tasks it removes on both nodes first: nothing lost', async () => {
      const ids = await deployed('/web', 'web.test', 4);
      const before = await pids();
      const loads = loadEverywhere('web.test');
      await flowing(loads);
      const run = await edgeroute(['scale', '/web', '2']);
      await flowing(loads);
      const reports = await stopAll(loads);
      expect(reports.map((r) => r.failures)).toEqual([[], []]);
      expect(run.exitCode, run.all).toBe(0);
      expect(run.all).toMatch(/edge-a drained, edge-b drained/);
      expect(reports.every((r) => r.sent > 100)).toBe(true);
      expect(marathon.tasks('/web')).toHaveLength(2);
      expect(taskIds('/web').every((id) => ids.includes(id))).toBe(true);
      // Nothing was cut at the tasks either (a client resending on a closed keep-alive connection would hide it).
      expect(cutAt(ids)).toBe(0);
      expect(await pids()).toEqual(before);
    }, 120_000);

    it('restart replaces every task a batch at a time: nothing lost, all tasks new', async () => {
      // A publish delay: killing the second batch before the first batch's replacements are
      // published would leave no backend at all.
      const old = await deployed('/api', 'api.test', 4, { 'edgeroute.publishDelaySeconds': '1' });
      const loads = loadEverywhere('api.test');
      await flowing(loads);
      const run = await edgeroute(['restart', '/api', '--batch', '2']);
      await flowing(loads);
      const reports = await stopAll(loads);
      expect(reports.map((r) => r.failures)).toEqual([[], []]);
      expect(run.exitCode, run.all).toBe(0);
      // The second batch is drained only after the first one's replacements are published on both nodes.
      const output = run.all ?? '';
      expect(output.indexOf('publish  edge-a 2/2, edge-b 2/2 published')).toBeGreaterThan(0);
      expect(output.indexOf('publish  edge-a 2/2, edge-b 2/2 published')).toBeLessThan(output.indexOf('batch 2/2'));
      const now = taskIds('/api');
      expect(now).toHaveLength(4);
      expect(now.some((id) => old.includes(id))).toBe(false);
      expect(cutAt(old)).toBe(0);
      // Traffic reached the new tasks on both nodes.
      for (const report of reports) expect([...report.byBackend.keys()].some((id) => now.includes(id))).toBe(true);
    }, 180_000);

    // A rollout moves traffic between versions with split policies, which both data planes evaluate.
    it('rollout moves an app to a new version and --abort moves it back: nothing lost', async () => {
      const v1 = await deployed('/shop-v1', 'shop.test', 2, { 'edgeroute.app': 'shop', 'edgeroute.version': 'v1' });
      const file = join(scratch, 'shop-v2.json');
      writeFileSync(file, JSON.stringify({ id: '/shop-v2', instances: 2, labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': 'v2' } }));
      const loads = loadEverywhere('shop.test');
      await flowing(loads);
      const run = await edgeroute(['rollout', 'shop', '--to', file, '--steps', '50', '--step-wait', '1']);
      await flowing(loads);
      const middle = loads.map((l) => l.sent());
      expect(run.exitCode, run.all).toBe(0);
      expect(run.all).toMatch(/every request → v2/);
      const v2 = taskIds('/shop-v2');
      expect(v2).toHaveLength(2);
      expect(marathon.tasks('/shop-v1')).toHaveLength(0);
      // Now only v2 answers, on both nodes.
      for (const node of nodes) {
        const reply = await httpRequest(`${node.publicUrl}/`, { host: 'shop.test' });
        expect(v2).toContain(reply.body);
      }

      const back = await edgeroute(['rollout', 'shop', '--abort']);
      await flowing(loads);
      const reports = await stopAll(loads);
      expect(back.exitCode, back.all).toBe(0);
      expect(reports.map((r) => r.failures)).toEqual([[], []]);
      expect(reports.every((r, i) => r.sent > (middle[i] ?? 0))).toBe(true);
      expect(marathon.tasks('/shop-v2')).toHaveLength(0);
      const restored = taskIds('/shop-v1');
      expect(restored).toHaveLength(2);
      for (const node of nodes) {
        const reply = await httpRequest(`${node.publicUrl}/`, { host: 'shop.test' });
        expect(restored).toContain(reply.body);
      }
      expect(v1.some((id) => restored.includes(id))).toBe(false);
      expect(cutAt([...v1, ...v2])).toBe(0);
    }, 240_000);

    it('a kill waits for the slowest live node to finish its requests to the task', async () => {
      const ids = await deployed('/slowpoke', 'slowpoke.test', 2);
      const victim = ids[0] as string;
      // Counted from here: deployed() already sent the victim requests of its own, and a wait that
      // counted them let the kill run before any slow one reached the task (seen in CI under load).
      const before = marathon.taskStats(victim)?.requests ?? 0;
      // Long requests through node b only: six, so both tasks hold some.
      const slow = Array.from({ length: 6 }, () => httpRequest(`${nodes[1]?.publicUrl}/slow/3000`, { host: 'slowpoke.test', timeoutMs: 20_000 }));
      await waitFor('slow requests in flight on the victim', () => ((marathon.taskStats(victim)?.requests ?? 0) >= before + 2 ? true : undefined));
      let killedAt = 0;
      const off = marathon.onEvent((event) => {
        const update = event as { eventType?: string; taskId?: string };
        if (update.eventType === 'status_update_event' && update.taskId === victim && killedAt === 0) killedAt = Date.now();
      });
      const run = await edgeroute(['kill', victim]);
      off();
      const replies = await Promise.all(slow);
      const finished = Date.now();
      expect(run.exitCode, run.all).toBe(0);
      expect(run.all).toMatch(/edge-b [1-9]\d* in flight/);
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(replies.filter((r) => r.body === victim).length).toBeGreaterThan(0);
      expect(killedAt).toBeGreaterThan(0);
      expect(killedAt).toBeLessThanOrEqual(finished);
    }, 60_000);

    it('a kill waits for an open WebSocket up to --drain-timeout, then says how many it cuts', async () => {
      const ids = await deployed('/chat', 'chat.test', 2);
      const node = nodes[0] as RigNode;
      const socket = new WebSocket(`ws://127.0.0.1:${new URL(node.publicUrl).port}/live`, { headers: { host: 'chat.test' } });
      const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
      const echo = await new Promise<string>((resolve, reject) => {
        socket.on('open', () => socket.send('hi'));
        socket.once('message', (data) => resolve(String(data)));
        socket.on('error', reject);
      });
      const victim = echo.slice(0, -':hi'.length);
      expect(ids).toContain(victim);
      const started = Date.now();
      const run = await edgeroute(['kill', victim, '--drain-timeout', '3']);
      // The drain waited for the connection, gave up after 3 s, and said what it cut.
      expect(run.exitCode, run.all).toBe(5);
      expect(run.all).toMatch(/edge-a 1 in flight/);
      expect(run.all).toMatch(/gave up waiting after 3 s for edge-a; going on, which cuts 1 request or connection still in flight/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
      // Killed only after the wait: the socket closed with the task.
      expect(await closed).toBeGreaterThanOrEqual(started + 3000);
      expect(taskIds('/chat')).not.toContain(victim);
    }, 60_000);

    if (!rig.differs.serverPickedBeforeBody) {
      it('a request whose body was still uploading when the drain began goes to another task', async () => {
        const ids = await deployed('/upload', 'upload.test', 2);
        const drained = ids[0] as string;
        const node = nodes[0] as RigNode;
        const port = Number(new URL(node.publicUrl).port);
        // Routing is chosen in access, before nginx reads the body; the peer only once the body is in.
        const uploads = await Promise.all(Array.from({ length: 6 }, () => startUpload(port, 'upload.test')));
        const run = await edgeroute(['drain', drained]);
        expect(run.exitCode, run.all).toBe(0);
        const answers = await Promise.all(uploads.map((finish) => finish()));
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
        expect(answers.map((a) => a.body)).not.toContain(drained);
        const lift = await edgeroute(['drain', '--lift', drained]);
        expect(lift.exitCode, lift.all).toBe(0);
        await waitForBackends(node.publicUrl, 'upload.test', ids);
      }, 60_000);
    } else {
      it('a request whose body was still uploading when the drain began finishes on its task, and the drain waits for it', async () => {
        const ids = await deployed('/upload', 'upload.test', 2);
        const drained = ids[0] as string;
        const node = nodes[0] as RigNode;
        const port = Number(new URL(node.publicUrl).port);
        // HAProxy picks the server once the headers are in and streams the body to it: the uploads
        // to the drained task are sessions on its server, which the drain counts in flight.
        // Counted from here: deployed() already sent the task requests of its own.
        const before = marathon.taskStats(drained)?.requests ?? 0;
        const uploads = await Promise.all(Array.from({ length: 6 }, () => startUpload(port, 'upload.test')));
        await waitFor('uploads under way on the drained task', () => ((marathon.taskStats(drained)?.requests ?? 0) >= before + 1 ? true : undefined));
        const running = edgeroute(['drain', drained]);
        // (The CLI may first build dist/ in a checkout whose sources changed.)
        await waitFor('the drain on both nodes', () => (nodes.every((n) => n.agent.reconciler.backendStatuses.find((b) => b.taskId === drained)?.state === 'draining') ? true : undefined), 45_000);
        // New requests go to the other task at once, while the drain still waits for the uploads.
        await waitForBackends(node.publicUrl, 'upload.test', ids.slice(1));
        await new Promise((r) => setTimeout(r, 500));
        expect(running.exitCode).toBeNull();
        const answers = await Promise.all(uploads.map((finish) => finish()));
        const run = await running;
        expect(run.exitCode, run.all).toBe(0);
        expect(run.all).toMatch(/edge-a [1-9]\d* in flight/);
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
        expect(answers.filter((a) => a.body === drained).length).toBeGreaterThan(0);
        const lift = await edgeroute(['drain', '--lift', drained]);
        expect(lift.exitCode, lift.all).toBe(0);
        await waitForBackends(node.publicUrl, 'upload.test', ids);
      }, 60_000);
    }

    it('a dead agent does not block a kill forever', async () => {
      const dataPlane = await rig.startDataPlane({ workerProcesses: 1 });
      const agent = spawnAgent(['--marathon', marathon.url, ...dataPlane.agentFlags.args, '--redis', redis.url, '--node-id', 'edge-dead'], { ...dataPlane.agentFlags.env });
      try {
        await waitFor('the third node in the fleet', async () => ((await fleet()).some((n) => n.nodeId === 'edge-dead' && n.live) ? true : undefined), 20_000);
        const ids = await deployed('/solo', 'solo.test', 2);
        process.kill(agent.pid, 'SIGKILL');
        const started = Date.now();
        const run = await edgeroute(['kill', ids[0] as string, '--scale', '--drain-timeout', '60']);
        expect(run.exitCode, run.all).toBe(0);
        expect(run.all).toMatch(/node edge-dead is not live/);
        // It waited for the heartbeat to expire (10 s), not for the 60 s timeout.
        expect(Date.now() - started).toBeLessThan(40_000);
        expect(taskIds('/solo')).toEqual([ids[1]]);
      } finally {
        await agent.stop().catch(() => undefined);
        await dataPlane.stop();
      }
    }, 90_000);
  });
}
