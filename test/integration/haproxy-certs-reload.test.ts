// A reload the agent makes itself (--haproxy-conf-dir, here to grow a full
// backend pool) starts a worker with haproxy.cfg's empty crt-list. The
// agent gives it the certificates served by SNI as soon as it holds the
// routes again, not at the certificate watcher's next check: the check runs
// once a minute here, so a refill that waited for it would fail the test.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { reloadsLogged, startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { makeTestCert, peerCertificate } from '../helpers/test-certs.js';
import { waitForBackends } from '../helpers/traffic.js';

let root: string;
let marathon: MarathonSim;
let node: HaproxyRoutingNode;

const served = async (servername: string) => (await peerCertificate(node.haproxy.tlsPort as number, servername)).subject.CN as string;
const reloads = () => reloadsLogged(node.logs);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'edgeroute-hacerts-reload-'));
  const certs = join(root, 'certs');
  const staticDir = join(root, 'static');
  mkdirSync(certs);
  mkdirSync(staticDir);
  await Promise.all([
    makeTestCert({ names: ['static.test'], cert: join(staticDir, 'static.crt'), key: join(staticDir, 'static.key') }),
    makeTestCert({ names: ['a.test'], cert: join(certs, 'a.crt'), key: join(certs, 'a.key') }),
  ]);
  marathon = await MarathonSim.start();
  node = await startHaproxyRoutingNode(
    marathon.url,
    (haproxy) => ({ certs, certScanIntervalMs: 60_000, haproxyConfDir: haproxy.dir, listen: '127.0.0.1:0' }),
    { backendPool: 1, tls: { cert: join(staticDir, 'static.crt'), key: join(staticDir, 'static.key') } },
  );
  await node.agent.ready;
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('certificates by SNI across a reload the agent makes', () => {
  it('serves the certificate from the reloaded worker at once, not at the next check a minute later', async () => {
    await waitFor('the certificate in HAProxy', async () => ((await served('a.test')) === 'a.test' ? true : undefined), 15_000, 100);
    const master = node.haproxy.masterPid();
    const worker = await node.haproxy.workerPid();

    // One backend in the pool: a second app needs a reload.
    await marathon.deploy({ id: '/a', instances: 1, labels: { 'edgeroute.vhosts': 'a.test' } });
    await marathon.deploy({ id: '/b', instances: 1, labels: { 'edgeroute.vhosts': 'b.test' } });
    await waitForBackends(node.haproxy.publicUrl, 'b.test', marathon.tasks('/b').map((t) => t.id), 30_000);
    await waitFor('the reload', () => (reloads() > 0 ? true : undefined), 10_000);
    expect(await node.haproxy.workerPid()).not.toBe(worker);
    expect(node.haproxy.masterPid()).toBe(master);

    const reloaded = performance.now();
    await waitFor('the certificate in the reloaded worker', async () => ((await served('a.test')) === 'a.test' ? true : undefined), 10_000, 50);
    console.log(`certificate served by SNI ${Math.round(performance.now() - reloaded)} ms after the new worker routed`);
    expect(await served('other.test')).toBe('static.test');
  });
});
