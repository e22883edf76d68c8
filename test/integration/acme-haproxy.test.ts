// ACME HTTP-01 through an HAProxy routing node (issue 20): the nginx node's
// agent orders, pebble's mock DNS sends the CA to the HAProxy node, whose
// agent keeps acme-challenges.map in step with the challenges in Redis
// through the runtime API, so the certificate is issued without a reload of
// HAProxy. A challenge written to Redis is answered with its exact key
// authorization, ahead of the app's https redirect; a token not pending is
// routed to the app; a malformed one is not served.
//
// nginx listens on 127.0.0.1 and HAProxy on 127.0.0.4, on the same port:
// pebble has one httpPort, and its mock DNS picks the node.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeStore } from '../../agent/acme/acme-store.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startPebble, type Pebble } from '../helpers/pebble.js';
import { makeTestCert, peerCertificate, privateKeyMarker } from '../helpers/test-certs.js';

const HAPROXY_ADDRESS = '127.0.0.4';
const ORDERING_ADDRESS = '127.0.0.5';
const NAME = 'ha.acme.test';
const ORDERED_BY_HAPROXY = 'ordered.ha.acme.test';

let root: string;
let redis: RedisServer;
let client: Redis;
let marathon: MarathonSim;
let pebble: Pebble;
let httpPort: number;
let nginx: NginxNode;
let nginxAgent: AgentProcess;
let haproxy: HaproxyRoutingNode;
/** An HAProxy node that orders too (--acme-directory), with a TLS listener on ORDERING_ADDRESS. */
let ordering: HaproxyRoutingNode;
let haproxyPids: { master: number; worker: number };

/** The certificate a node presents for `servername`: the nginx node's by default. */
const handshake = (servername: string, host = '127.0.0.1', port = nginx.tlsPort as number) => peerCertificate(port, servername, host);

/** A GET to the HAProxy node's listener, as pebble makes it. */
function viaHaproxy(path: string, host = NAME) {
  return httpGet(`http://${HAPROXY_ADDRESS}:${httpPort}${path}`, { host });
}

async function currentPids(): Promise<{ master: number; worker: number }> {
  return { master: haproxy.haproxy.masterPid(), worker: await haproxy.haproxy.workerPid() };
}

/** Requests HAProxy's HTTP frontend answered itself (`http-request return`): the challenges it served. */
async function interceptedRequests(): Promise<number> {
  const csv = await haproxy.haproxy.runtime('show stat');
  const [header, ...rows] = csv.split('\n');
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const row = rows.find((line) => line.startsWith('edgeroute-http,FRONTEND,'));
  return Number(row?.split(',')[columns.indexOf('intercepted')]);
}

beforeAll(async () => {
  // The bin builds dist/ when the sources are newer: once here, before the agent starts.
  await execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'edgeroute.js'), 'agent', '--help']);
  root = mkdtempSync(join(tmpdir(), 'edgeroute-acme-haproxy-'));
  const tls = await makeTestCert({ names: ['static.test'], cert: join(root, 'static.crt'), key: join(root, 'static.key') });
  httpPort = await freePort();
  [redis, marathon, pebble] = await Promise.all([startRedis(), MarathonSim.start(), startPebble({ httpPort })]);
  client = new Redis(redis.url, { lazyConnect: false });
  nginx = await startNginxNode({ publicPort: httpPort, tls });
  const apiUrl = `http://127.0.0.1:${await freePort()}`;
  nginxAgent = spawnAgent(
    [
      '--marathon', marathon.url,
      '--nginx-admin', nginx.adminUrl,
      '--redis', redis.url,
      '--node-id', 'n',
      '--listen', apiUrl.replace('http://', ''),
      '--acme-directory', pebble.directory,
      '--acme-email', 'ops@acme.test',
      '--acme-ca', pebble.caFile,
      '--acme-check-interval', '1',
      '--debounce-ms', '0',
      '--snapshot-file', nginx.snapshotFile as string,
    ],
    { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken },
  );
  // No --acme-directory: the HAProxy node only answers the fleet's challenges.
  haproxy = await startHaproxyRoutingNode(marathon.url, { redis: redis.url, nodeId: 'h', debounceMs: 0 }, { listenHost: HAPROXY_ADDRESS, port: httpPort });
  await waitFor('the nginx agent API', () => fetch(`${apiUrl}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 120_000, 100);
  haproxyPids = await currentPids();
}, 180_000);

afterAll(async () => {
  await nginxAgent?.stop();
  await nginx?.process.stop();
  await haproxy?.stop();
  await ordering?.stop();
  client?.disconnect();
  await pebble?.stop();
  await marathon?.stop();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('ACME through an HAProxy node', () => {
  it('issues the certificate the nginx node orders, pebble validating through HAProxy, without a reload', async () => {
    // Only the HAProxy node listens on the address the CA resolves the name to.
    await pebble.resolve(NAME, HAPROXY_ADDRESS);
    const interceptedBefore = await interceptedRequests();
    // redirectHttps: the challenge must be answered ahead of the redirect (the Lua action's).
    await marathon.deploy({ id: '/ha', instances: 1, labels: { 'edgeroute.vhosts': NAME, 'edgeroute.acme': 'true', 'edgeroute.redirectHttps': 'true' } });
    const started = Date.now();
    const cert = await waitFor(
      'the certificate served by the nginx node',
      async () => {
        const served = await handshake(NAME).catch(() => null);
        return served && /Pebble Intermediate CA/.test(String(served.issuer.CN)) && served.subjectaltname === `DNS:${NAME}` ? served : undefined;
      },
      45_000,
      100,
    );
    console.log(`acme-haproxy: label to certificate in ${Date.now() - started} ms, validated through HAProxy`);
    expect(cert).toBeDefined();
    const stored = JSON.parse((await client.get(`edgeroute:acme:cert:${NAME}`)) as string) as { by: string };
    expect(stored.by).toBe('n');
    // HAProxy answered the CA itself (pebble validates from more than one request at times).
    expect(await interceptedRequests()).toBeGreaterThan(interceptedBefore);
    // The token is withdrawn once the order is done: the map is empty again.
    await waitFor('the map emptied', async () => ((await haproxy.haproxy.runtime(`show map ${haproxy.haproxy.dir}/acme-challenges.map`)).trim() === '' ? true : undefined), 10_000, 50);
    expect(await currentPids()).toEqual(haproxyPids);
  }, 90_000);

  it('answers a challenge written to Redis with its exact key authorization, routes other tokens to the app, and serves no malformed one', async () => {
    const store = new AcmeStore(client, 'edgeroute:');
    const token = 'Zm9vYmFyLXRva2VuXzEyMw';
    const keyAuthorization = `${token}.dGh1bWJwcmludC1vZi10aGUtYWNjb3VudA`;
    const malformed = 'bWFsZm9ybWVk';
    await waitFor('the app routed by HAProxy', async () => ((await viaHaproxy('/')).status === 301 ? true : undefined), 15_000, 50);
    // A key authorization that would be log-format or a second map word, were it not refused.
    await store.addChallenge(malformed, { keyAuthorization: `${malformed}.x %[env(HOME)]`, name: NAME, expiresAt: Date.now() + 60_000 });
    await store.addChallenge(token, { keyAuthorization, name: NAME, expiresAt: Date.now() + 60_000 });
    const answered = await waitFor(
      'the challenge answered by HAProxy',
      async () => {
        const res = await viaHaproxy(`/.well-known/acme-challenge/${token}`);
        return res.status === 200 ? res : undefined;
      },
      10_000,
      50,
    );
    expect(answered.body).toBe(keyAuthorization);
    expect(String(answered.headers['content-type'])).toMatch(/^text\/plain/);
    // Whatever the host: the CA may ask for any name that resolves to this node.
    expect((await viaHaproxy(`/.well-known/acme-challenge/${token}`, 'other.test')).body).toBe(keyAuthorization);
    // The malformed one and a token not pending are routed as any request: the app's https redirect.
    for (const path of [`/.well-known/acme-challenge/${malformed}`, '/.well-known/acme-challenge/not-pending', `/.well-known/acme-challenge/${token}/more`]) {
      const res = await viaHaproxy(path);
      expect([path, res.status, res.headers.location]).toEqual([path, 301, `https://${NAME}${path}`]);
    }
    expect(haproxy.logs.has((line) => line.level === 40 && String(line.msg).includes('a challenge in Redis is not a base64url token'))).toBe(true);
    await store.removeChallenge(token);
    await waitFor('the withdrawn challenge routed again', async () => ((await viaHaproxy(`/.well-known/acme-challenge/${token}`)).status === 301 ? true : undefined), 10_000, 50);
    await client.hdel('edgeroute:acme:challenges', malformed);
    expect(await currentPids()).toEqual(haproxyPids);
  });

  it('writes a pending challenge again into an HAProxy that restarted (its map file is empty)', async () => {
    const store = new AcmeStore(client, 'edgeroute:');
    const token = 'cmVzdGFydGVkLXRva2Vu';
    const keyAuthorization = `${token}.dGh1bWJwcmludC1vZi10aGUtYWNjb3VudA`;
    const answer = async () => {
      const res = await viaHaproxy(`/.well-known/acme-challenge/${token}`);
      return res.status === 200 && res.body === keyAuthorization ? true : undefined;
    };
    await store.addChallenge(token, { keyAuthorization, name: NAME, expiresAt: Date.now() + 60_000 });
    await waitFor('the challenge answered', answer, 10_000, 50);
    await haproxy.haproxy.restart();
    expect(await currentPids()).not.toEqual(haproxyPids);
    // No notice comes (Redis did not change): the agent's next reading, every 10 s, writes it again.
    const restartedAt = Date.now();
    await waitFor('the challenge answered by the restarted HAProxy', answer, 20_000, 100);
    console.log(`acme-haproxy: challenge answered again ${Date.now() - restartedAt} ms after HAProxy restarted`);
    await store.removeChallenge(token);
  }, 40_000);
  it('orders on an HAProxy node too: pebble validates through it, and it serves the certificate by SNI without a reload', async () => {
    // Started here: in beforeAll it could take the first test's order, which that test wants the nginx node to place.
    ordering = await startHaproxyRoutingNode(
      marathon.url,
      { redis: redis.url, nodeId: 'o', debounceMs: 0, acme: { directory: pebble.directory, email: 'ops@acme.test', caFile: pebble.caFile, checkIntervalMs: 1_000 } },
      { listenHost: ORDERING_ADDRESS, port: httpPort, tls: { cert: join(root, 'static.crt'), key: join(root, 'static.key') } },
    );
    await pebble.resolve(ORDERED_BY_HAPROXY, ORDERING_ADDRESS);
    const pids = { master: ordering.haproxy.masterPid(), worker: await ordering.haproxy.workerPid() };
    // The nginx node's agent is paused so that the HAProxy node places the order.
    process.kill(nginxAgent.pid, 'SIGSTOP');
    try {
      await marathon.deploy({ id: '/ordered', instances: 1, labels: { 'edgeroute.vhosts': ORDERED_BY_HAPROXY, 'edgeroute.acme': 'true' } });
      await waitFor('the order placed', async () => ((await client.get(`edgeroute:acme:cert:${ORDERED_BY_HAPROXY}`)) !== null ? true : undefined), 45_000, 100);
    } finally {
      process.kill(nginxAgent.pid, 'SIGCONT');
    }
    expect((JSON.parse((await client.get(`edgeroute:acme:cert:${ORDERED_BY_HAPROXY}`)) as string) as { by: string }).by).toBe('o');
    const cert = await waitFor(
      'the certificate served by the HAProxy node that orders',
      async () => {
        const served = await handshake(ORDERED_BY_HAPROXY, ORDERING_ADDRESS, ordering.haproxy.tlsPort as number).catch(() => null);
        return served && /Pebble Intermediate CA/.test(String(served.issuer.CN)) && served.subjectaltname === `DNS:${ORDERED_BY_HAPROXY}` ? served : undefined;
      },
      45_000,
      100,
    );
    expect(cert).toBeDefined();
    // Another name still gets the default certificate.
    expect((await handshake('static.test', ORDERING_ADDRESS, ordering.haproxy.tlsPort as number)).subjectaltname).toContain('static.test');
    expect({ master: ordering.haproxy.masterPid(), worker: await ordering.haproxy.workerPid() }).toEqual(pids);
    const key = (JSON.parse((await client.get(`edgeroute:acme:cert:${ORDERED_BY_HAPROXY}`)) as string) as { keyPem: string }).keyPem;
    const body = privateKeyMarker(key);
    expect(ordering.logs.lines().some((line) => JSON.stringify(line).includes(body))).toBe(false);
  }, 90_000);
});
