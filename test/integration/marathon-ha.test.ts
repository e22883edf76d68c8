// Marathon HA and absent neighbours: follow the leader, survive its death,
// detect a stalled event stream, speak HTTPS with a private CA, keep
// credentials out of logs, and carry on without Redis.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startLoad } from '../helpers/load.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';

let marathon: MarathonSim | undefined;
let node: RoutingNode | undefined;
let redis: RedisServer | undefined;
const cleanups: Array<() => void> = [];

afterEach(async () => {
  await node?.stop();
  await marathon?.stop();
  await redis?.stop();
  node = undefined;
  marathon = undefined;
  redis = undefined;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const taskIds = (appId: string) => marathon!.tasks(appId).map((t) => t.id);
const attachedTo = (url: string) => node!.logs.has((l) => l.msg === 'marathon event stream attached' && String(l.url).startsWith(url));

describe('Marathon HA', () => {
  it('takes the event stream from the leader, and follows a new leader when the old one dies', async () => {
    marathon = await MarathonSim.start({ instances: 3, heartbeatMs: 500 });
    const [leader, standbyA, standbyB] = marathon.urls as [string, string, string];
    node = await startRoutingNode([standbyB, standbyA, leader].join(','));
    await marathon.deploy({ id: '/ha', instances: 2, labels: { 'edgeroute.vhosts': 'ha.test' } });
    await waitForBackends(node.nginx.publicUrl, 'ha.test', taskIds('/ha'));
    expect(attachedTo(leader)).toBe(true);

    const load = startLoad(node.nginx.publicUrl, 'ha.test');
    await marathon.setInstanceDown(0, true);
    await marathon.electLeader(2);
    await waitFor('the agent to attach to the new leader', () => (attachedTo(standbyB) ? true : undefined), 15_000);
    await marathon.scale('/ha', 4);
    await waitForBackends(node.nginx.publicUrl, 'ha.test', taskIds('/ha'));
    const report = await load.stop();
    expect(report.failures).toEqual([]);
  });

  it('treats a stream that sends nothing as dead, reconnects and catches up', async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 200 });
    node = await startRoutingNode(marathon.url, { stallTimeoutMs: 1_000 });
    await marathon.deploy({ id: '/stall', instances: 1, labels: { 'edgeroute.vhosts': 'stall.test' } });
    await waitForBackends(node.nginx.publicUrl, 'stall.test', taskIds('/stall'));

    // The connection stays open but nothing arrives, not even heartbeats; the scale's events are lost.
    marathon.stallEvents(true);
    await marathon.scale('/stall', 3);
    await waitForBackends(node.nginx.publicUrl, 'stall.test', taskIds('/stall'), 10_000);
    expect(node.logs.has((l) => String(l.err ?? '').includes('no byte for 1000 ms'))).toBe(true);
    marathon.stallEvents(false);
  });

  it('speaks HTTPS to Marathon with a private CA, and says why without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeroute-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    marathon = await MarathonSim.start({ tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') } });
    expect(marathon.url).toMatch(/^https:/);
    await marathon.deploy({ id: '/tls', instances: 1, labels: { 'edgeroute.vhosts': 'tls.test' } });

    node = await startRoutingNode(marathon.url);
    await waitFor('a TLS failure in the log', () => (node!.logs.has((l) => l.msg === 'sync failed; nginx keeps its current table') ? true : undefined));
    await node.restartAgent({ marathonCa: cert });
    await waitForBackends(node.nginx.publicUrl, 'tls.test', taskIds('/tls'));
  });

  it('sends basic-auth credentials from the URL and never logs them', async () => {
    marathon = await MarathonSim.start();
    const url = marathon.url.replace('http://', 'http://ops:s3cret-pass@');
    node = await startRoutingNode(url);
    await marathon.deploy({ id: '/auth', instances: 1, labels: { 'edgeroute.vhosts': 'auth.test' } });
    await waitForBackends(node.nginx.publicUrl, 'auth.test', taskIds('/auth'));
    const logged = JSON.stringify(node.logs.lines());
    expect(logged).toContain(marathon.url);
    expect(logged).not.toContain('s3cret');
  });
});

describe('Redis away', () => {
  it('keeps routing on local health memory with one warning, and shares again when Redis returns', async () => {
    redis = await startRedis();
    const port = redis.port;
    marathon = await MarathonSim.start();
    node = await startRoutingNode(marathon.url, { redis: redis.url });
    const HC = { protocol: 'HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };
    await marathon.deploy({ id: '/mem', instances: 2, labels: { 'edgeroute.vhosts': 'mem.test' }, healthChecks: [HC] });
    await waitForBackends(node.nginx.publicUrl, 'mem.test', taskIds('/mem'));

    await redis.stop();
    await marathon.scale('/mem', 3);
    await waitForBackends(node.nginx.publicUrl, 'mem.test', taskIds('/mem'));
    await waitFor('the warning', () => (node!.logs.has((l) => String(l.msg).includes('falls back')) ? true : undefined));

    // A failover while Redis is down: the agent's own memory keeps the tasks published.
    const load = startLoad(node.nginx.publicUrl, 'mem.test');
    await marathon.electLeader(0);
    await new Promise((r) => setTimeout(r, 500));
    marathon.restoreHealth();
    const report = await load.stop();
    expect(report.failures).toEqual([]);
    expect(node.logs.lines().filter((l) => String(l.msg).includes('falls back'))).toHaveLength(1);

    redis = await startRedis({ port });
    await marathon.scale('/mem', 2);
    await waitFor('redis to be used again', () => (node!.logs.has((l) => String(l.msg).includes('reachable again')) ? true : undefined), 20_000);
  });
});
