// Bad input and absent neighbours: nginx keeps serving its last good table,
// every problem is said clearly, and routing resumes when the input is good.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { AGENT_DEFAULTS, startAgent, type RunningAgent } from '../../agent/run-agent.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';
import { answers, waitForBackends } from '../helpers/traffic.js';

let nginx: NginxNode;
let marathon: MarathonSim;
let agent: RunningAgent;
let logs: CapturedLog;

const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2 });
  marathon = await MarathonSim.start({ heartbeatMs: 500 });
  logs = captureLog();
  agent = startAgent(
    { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null },
    logs.log,
  );
  await marathon.deploy({ id: '/web', instances: 3, labels: { 'edgeroute.vhosts': 'web.test' } });
  await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
});

afterAll(async () => {
  await agent?.stop();
  await marathon?.stop();
  await nginx?.process.stop();
});

async function push(body: string, token: string | null): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${nginx.adminUrl}/edgeroute/apps`, { method: 'POST', headers, body });
  return { status: res.status, body: await res.text() };
}

function allServedBy(seen: Map<string, number>, ids: string[]): boolean {
  return [...seen.keys()].every((k) => ids.includes(k));
}

describe('the admin endpoint refuses bad pushes and keeps the table in force', () => {
  it.each([
    ['no token', '{"version":"x","base":null}\n', null, 401],
    ['a wrong token', '{"version":"x","base":null}\n', 'wrong-token-wrong-token', 401],
  ])('answers 401 to a push with %s', async (_title, body, token, status) => {
    const reply = await push(body, token);
    expect(reply.status).toBe(status);
    expect(reply.body).toContain('admin token');
    expect(allServedBy(await answers(nginx.publicUrl, 'web.test', 12), taskIds('/web'))).toBe(true);
  });

  it.each([
    ['malformed JSON', '{"version": "v9", "base": {\n', 'line 1 is not a JSON object'],
    ['no version', '{"base":null}\n', 'version must be a non-empty string'],
    ['a host name as backend address', '{"version":"v9","base":null}\n{"id":"/x","hash":"h","vhosts":["x.test"],"defaultVersion":"stable","versions":{"stable":{"backends":[{"id":"t","address":"srv1.example.com","port":80,"weight":1}]}}}\n', 'address must be an IP address'],
    ['a port out of range', '{"version":"v9","base":null}\n{"id":"/x","hash":"h","vhosts":["x.test"],"defaultVersion":"stable","versions":{"stable":{"backends":[{"id":"t","address":"127.0.0.1","port":70000,"weight":1}]}}}\n', 'port must be a port number'],
    ['a route line that is not JSON', '{"version":"v9","base":null}\n{"id": "/x", \n', 'line 2 is not a JSON object'],
    // Found by fuzzing: the shared dict refused the key with a 507, after storing the routes before it.
    ['an app id of 70,000 bytes', `{"version":"v9","base":null}\n{"id":"/${'l'.repeat(70_000)}","hash":"h","vhosts":["x.test"],"defaultVersion":"stable","versions":{"stable":{"backends":[]}}}\n`, 'id is longer than 4096 bytes'],
  ])('answers 400 to %s and changes nothing', async (_title, body, message) => {
    const reply = await push(body, nginx.adminToken);
    expect(reply.status).toBe(400);
    expect(reply.body).toContain(message);
    const seen = await answers(nginx.publicUrl, 'web.test', 12);
    expect(allServedBy(seen, taskIds('/web'))).toBe(true);
    expect(seen.size).toBe(3);
  });
});

describe('request bodies', () => {
  // Found by fuzzing: nginx buffers a body past client_body_buffer_size to temp/, which the
  // workers (nobody, under root) could not reach in the sandbox's 0700 prefix: a 500.
  it('proxies a POST whose body nginx buffers to disk', async () => {
    const reply = await httpRequest(`${nginx.publicUrl}/`, { host: 'web.test', method: 'POST', body: 'b'.repeat(64 * 1024) });
    expect(reply.status).toBe(200);
    expect(taskIds('/web')).toContain(reply.body);
  });
});

describe('Marathon trouble', () => {
  it('keeps serving while Marathon answers malformed JSON, says so, and recovers', async () => {
    marathon.setRawAppsResponse('{"apps": [ {"id": "/web", ');
    // An event that names no app makes the agent read the whole listing, which fails.
    marathon.publishEvent({ eventType: 'group_change_success', timestamp: new Date().toISOString(), groupId: '/', version: new Date().toISOString() });
    await waitFor('the agent to report malformed JSON', () => (logs.has((l) => String(l.err ?? '').includes('malformed JSON')) ? true : undefined));
    const seen = await answers(nginx.publicUrl, 'web.test', 20);
    expect([...seen.keys()].every((k) => k.startsWith('web.'))).toBe(true);
    marathon.setRawAppsResponse(null);
    await marathon.scale('/web', 4);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
  });

  it('keeps the table when Marathon answers 200 with something that is not a listing', async () => {
    const before = taskIds('/web');
    marathon.setRawAppsResponse('{"message":"An unexpected server error occurred"}');
    const failures = agent.reconciler.stats.syncFailures;
    marathon.publishEvent({ eventType: 'group_change_success', timestamp: new Date().toISOString(), groupId: '/', version: new Date().toISOString() });
    await waitFor('the sync to fail', () => (agent.reconciler.stats.syncFailures > failures ? true : undefined));
    const seen = await answers(nginx.publicUrl, 'web.test', 20);
    expect([...seen.keys()].sort()).toEqual([...before].sort());
    marathon.setRawAppsResponse(null);
    await marathon.scale('/web', before.length + 1);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
  });

  it('keeps the last table while Marathon is unreachable, and catches up when it returns', async () => {
    const before = taskIds('/web');
    await marathon.setUnavailable(true);
    await waitFor('the agent to notice', () => (logs.has((l) => l.msg === 'marathon event stream failed; reconnecting' || l.msg === 'marathon event stream ended; reconnecting') ? true : undefined));
    const during = await answers(nginx.publicUrl, 'web.test', 40);
    expect(during.size).toBe(before.length);
    expect(allServedBy(during, before)).toBe(true);

    // Changes made while the agent cannot see Marathon are picked up on return.
    await marathon.scale('/web', 2);
    await marathon.setUnavailable(false);
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'), 20_000);
  });
});

describe('event bursts', () => {
  it('turns a burst of 100+ Marathon events into a handful of syncs', async () => {
    const eventsBefore = marathon.eventCount();
    const syncsBefore = agent.reconciler.stats.syncs + agent.reconciler.stats.syncFailures;
    await marathon.scale('/web', 22);
    await marathon.scale('/web', 2);
    const events = marathon.eventCount() - eventsBefore;
    const lastEventAt = Date.now();
    await waitFor('a sync after the last event', () => ((agent.reconciler.stats.lastSyncAt ?? 0) > lastEventAt ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // let any trailing sync finish
    await waitForBackends(nginx.publicUrl, 'web.test', taskIds('/web'));
    const syncs = agent.reconciler.stats.syncs + agent.reconciler.stats.syncFailures - syncsBefore;
    console.log(`burst: ${events} events -> ${syncs} syncs`);
    expect(events).toBeGreaterThanOrEqual(100);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(12);
  });
});

describe('stopping', () => {
  it('stops an agent at once even right after it started (no stream to abort yet)', async () => {
    const quiet = await MarathonSim.start({ heartbeatMs: 10_000 });
    try {
      for (let i = 0; i < 5; i++) {
        const early = startAgent(
          { ...AGENT_DEFAULTS, marathon: quiet.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null },
          captureLog().log,
        );
        await new Promise((r) => setTimeout(r, i * 3));
        const started = Date.now();
        await early.stop();
        expect(Date.now() - started).toBeLessThan(2_000);
      }
    } finally {
      await quiet.stop();
    }
  });
});
