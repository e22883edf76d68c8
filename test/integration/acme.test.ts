// ACME certificates (issue 20) through real nginx, real Redis and Debian's
// pebble: an app labelled edgeroute.acme=true gets a certificate that both
// routing nodes serve by SNI, whichever node ordered it and whichever node the
// CA validated through; it is renewed at two thirds of its (short, pebble's
// certificateValidityPeriod) lifetime without a reload; an order pebble
// refuses is reported per name and retried; a node killed while it holds a
// name's lock delays the other only until the lock expires; no private key
// appears in any log or in the state.
//
// The nodes' nginx listen on the same HTTP port, A on 127.0.0.1 and B on
// 127.0.0.2, so that pebble (one httpPort) validates a name through the node
// its mock DNS names.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DetailedPeerCertificate } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/sandbox/free-port.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { launchBrowser } from '../helpers/browser.js';
import { makeTestCert, peerCertificate } from '../helpers/test-certs.js';
import { startPebble, type Pebble } from '../helpers/pebble.js';
import { EXPIRED_CERTIFICATE_KEPT_MS } from '../../agent/acme/acme-store.js';
import { processAlive } from '../helpers/process-alive.js';

/** pebble's certificates live this long: renewal is due 16 s after issuance. */
const VALIDITY_SECONDS = 24;
const LOCK_SECONDS = 3;
const B_ADDRESS = '127.0.0.2';
const TARPIT_ADDRESS = '127.0.0.3';

interface Node {
  readonly id: 'a' | 'b';
  readonly address: string;
  readonly nginx: NginxNode;
  agent: AgentProcess;
  readonly apiUrl: string;
  readonly pids: { master: number; workers: number[] };
}

let root: string;
let redis: RedisServer;
let client: Redis;
let marathon: MarathonSim;
let pebble: Pebble;
let httpPort: number;
const nodes: Node[] = [];
const killedOutput: string[] = [];
/** The dashboard's page as rendered, for the search for keys. */
const pages: string[] = [];

const handshake = (node: Node, servername: string) => peerCertificate(node.nginx.tlsPort as number, servername);

/** The certificate a node serves for `name` when it is pebble's, else undefined. */
async function pebbleCertificate(node: Node, name: string): Promise<DetailedPeerCertificate | undefined> {
  const cert = await handshake(node, name).catch(() => null);
  return cert && /Pebble Intermediate CA/.test(String(cert.issuer.CN)) && cert.subjectaltname === `DNS:${name}` ? cert : undefined;
}

async function state(node: Node): Promise<{ acme: Array<Record<string, unknown>> | null; certificates: Array<Record<string, unknown>> }> {
  const res = await fetch(`${node.apiUrl}/v1/state`);
  return (await res.json()) as never;
}

async function failureMetric(node: Node, name: string): Promise<number> {
  const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`edgeroute_acme_failures_total{name="${name}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function pids(nginx: NginxNode): Promise<{ master: number; workers: number[] }> {
  return { master: nginx.process.masterPid, workers: nginx.process.workerPids().sort() };
}

function startNodeAgent(node: Omit<Node, 'agent'>): AgentProcess {
  return spawnAgent(
    [
      '--marathon', marathon.url,
      '--nginx-admin', node.nginx.adminUrl,
      '--redis', redis.url,
      '--node-id', node.id,
      '--listen', node.apiUrl.replace('http://', ''),
      '--acme-directory', pebble.directory,
      '--acme-email', 'ops@acme.test',
      '--acme-ca', pebble.caFile,
      '--acme-lock-timeout', String(LOCK_SECONDS),
      '--acme-retry', '1',
      '--acme-check-interval', '1',
      '--debounce-ms', '0',
      '--snapshot-file', node.nginx.snapshotFile as string,
    ],
    { EDGEROUTE_ADMIN_TOKEN: node.nginx.adminToken },
  );
}

beforeAll(async () => {
  // The bin builds dist/ when the sources are newer: once here, not in both agents at the same time.
  await execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'edgeroute.js'), 'agent', '--help']);
  root = mkdtempSync(join(tmpdir(), 'edgeroute-acme-'));
  const tls = await makeTestCert({ names: ['static.test'], cert: join(root, 'static.crt'), key: join(root, 'static.key') });
  httpPort = await freePort();
  [redis, marathon, pebble] = await Promise.all([
    startRedis(),
    MarathonSim.start(),
    startPebble({ httpPort, validitySeconds: VALIDITY_SECONDS, blocked: ['blocked.acme.test'] }),
  ]);
  client = new Redis(redis.url, { lazyConnect: false });
  const [nginxA, nginxB] = await Promise.all([
    startNginxNode({ publicPort: httpPort, tls }),
    startNginxNode({ publicPort: httpPort, tls, editConf: (conf) => conf.replace(`listen 127.0.0.1:${httpPort};`, `listen ${B_ADDRESS}:${httpPort};`) }),
  ]);
  for (const [id, address, nginx] of [['a', '127.0.0.1', nginxA], ['b', B_ADDRESS, nginxB]] as const) {
    const node = { id, address, nginx, apiUrl: `http://127.0.0.1:${await freePort()}`, pids: await pids(nginx) };
    nodes.push({ ...node, agent: startNodeAgent(node) });
  }
  for (const node of nodes) await waitFor(`agent ${node.id} API`, () => fetch(`${node.apiUrl}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 120_000, 100);
}, 180_000);

afterAll(async () => {
  for (const node of nodes) {
    if (processAlive(node.agent.pid)) process.kill(node.agent.pid, 'SIGCONT');
    await node.agent.stop();
    await node.nginx.process.stop();
  }
  client?.disconnect();
  await pebble?.stop();
  await marathon?.stop();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const [a, b] = [() => nodes[0] as Node, () => nodes[1] as Node];

describe('ACME certificates', () => {
  it('orders a certificate for a labelled app on one node and serves it by SNI on both, validated through the other', async () => {
    // B's agent is paused until A holds the name's lock, so A orders; the
    // mock DNS sends pebble to B's nginx, which answers with the token that
    // A wrote to Redis and B's agent pushed.
    await pebble.resolve('shop.acme.test', B_ADDRESS);
    process.kill(b().agent.pid, 'SIGSTOP');
    const started = Date.now();
    // redirectHttps: the challenge must be answered ahead of the redirect.
    await marathon.deploy({ id: '/shop', instances: 1, labels: { 'edgeroute.vhosts': 'shop.acme.test', 'edgeroute.acme': 'true', 'edgeroute.redirectHttps': 'true' } });
    try {
      await waitFor('A holding the lock', async () => ((await client.get('edgeroute:acme:lock:shop.acme.test')) === 'a' ? true : undefined), 15_000, 20);
    } finally {
      process.kill(b().agent.pid, 'SIGCONT');
    }
    const onA = await waitFor('the certificate on A', () => pebbleCertificate(a(), 'shop.acme.test'), 20_000, 100);
    const onB = await waitFor('the certificate on B', () => pebbleCertificate(b(), 'shop.acme.test'), 10_000, 100);
    const servedMs = Date.now() - started;
    console.log(`acme: label to certificate served on both nodes in ${servedMs} ms`);
    expect(onB.fingerprint256).toBe(onA.fingerprint256);
    const stored = JSON.parse((await client.get('edgeroute:acme:cert:shop.acme.test')) as string) as { by: string; notAfter: string };
    expect(stored.by).toBe('a');
    // Redis drops it a week after it expires: a name no node wants any more leaves no private key behind.
    const expiresAt = Date.now() + (await client.pttl('edgeroute:acme:cert:shop.acme.test'));
    expect(Math.abs(expiresAt - (Date.parse(stored.notAfter) + EXPIRED_CERTIFICATE_KEPT_MS))).toBeLessThan(60_000);
    // The CA reached B only (its mock DNS): the token came to B's nginx through Redis, from A.
    const view = (await state(b())).acme?.find((entry) => entry.name === 'shop.acme.test');
    expect(view).toMatchObject({ status: 'valid', failures: 0 });
    expect(String(view?.issuedBy)).toContain('Pebble Intermediate CA');
    const listed = (await state(a())).certificates.find((cert) => cert.source === 'acme');
    expect(listed).toMatchObject({ names: ['shop.acme.test'], status: 'served' });
    // The app's plain-HTTP requests are redirected, a token that is not pending too (it is routed as any request).
    for (const path of ['/', '/.well-known/acme-challenge/not-pending']) {
      const res = await httpGet(`http://127.0.0.1:${httpPort}${path}`, { host: 'shop.acme.test' });
      expect([path, res.status, res.headers.location]).toEqual([path, 301, `https://shop.acme.test:${a().nginx.tlsPort}${path}`]);
    }
  });

  it('renews at two thirds of the lifetime, and both nodes serve the new certificate without a reload', async () => {
    const first = (await pebbleCertificate(a(), 'shop.acme.test')) as DetailedPeerCertificate;
    const firstFrom = Date.parse(first.valid_from);
    const lifetime = Date.parse(first.valid_to) - firstFrom;
    // pebble's notAfter is notBefore + validity - 1 s (both inclusive).
    expect(lifetime).toBeGreaterThanOrEqual((VALIDITY_SECONDS - 1) * 1000);
    expect(lifetime).toBeLessThanOrEqual(VALIDITY_SECONDS * 1000);
    const renewed = await waitFor(
      'the renewed certificate on A',
      async () => {
        const cert = await pebbleCertificate(a(), 'shop.acme.test');
        return cert && cert.fingerprint256 !== first.fingerprint256 ? cert : undefined;
      },
      30_000,
      200,
    );
    await waitFor('the renewed certificate on B', async () => ((await pebbleCertificate(b(), 'shop.acme.test'))?.fingerprint256 === renewed.fingerprint256 ? true : undefined), 10_000, 100);
    // Not before two thirds of the first one's lifetime (pebble's dates are whole seconds).
    expect(Date.parse(renewed.valid_from)).toBeGreaterThanOrEqual(firstFrom + (lifetime * 2) / 3 - 1_000);
    for (const node of nodes) expect(await pids(node.nginx)).toEqual(node.pids);
  }, 45_000);

  it('reports an order the CA refuses per name (state, metric, one warning) and retries it', async () => {
    await marathon.deploy({ id: '/blocked', instances: 1, labels: { 'edgeroute.vhosts': 'blocked.acme.test', 'edgeroute.acme': 'true' } });
    const failing = await waitFor(
      'two failures of blocked.acme.test',
      async () => {
        const entry = (await state(a())).acme?.find((e) => e.name === 'blocked.acme.test');
        return entry && (entry.failures as number) >= 2 ? entry : undefined;
      },
      20_000,
      200,
    );
    expect(failing).toMatchObject({ status: 'failing' });
    expect(String(failing.error)).toMatch(/rejectedIdentifier|blocked|forbidden|policy/i);
    expect(Date.parse(String(failing.retryAt))).toBeGreaterThan(Date.parse(String(failing.failedAt)));
    const metric = (await failureMetric(a(), 'blocked.acme.test')) + (await failureMetric(b(), 'blocked.acme.test'));
    expect(metric).toBeGreaterThanOrEqual(2);
    // One warning per node and change of problem, not one per attempt.
    for (const node of nodes) {
      const warnings = node.agent.output().split('\n').filter((line) => line.includes('"level":40') && line.includes('the order for blocked.acme.test failed'));
      expect(warnings.length).toBeLessThanOrEqual(1);
    }
    // The other name is unaffected.
    expect(await pebbleCertificate(b(), 'shop.acme.test')).toBeDefined();
    // The dashboard lists both names, the failing one with its problem.
    const browser = await launchBrowser();
    try {
      const page = await browser.browser.newPage();
      await page.goto(`${b().apiUrl}/`);
      const blocked = page.locator('tr[data-acme-name="blocked.acme.test"][data-status="failing"]');
      await blocked.waitFor({ timeout: 10_000 });
      expect(await blocked.innerText()).toMatch(/failing[\s\S]*failures? \(last on [ab]\)/);
      await page.locator('tr[data-acme-name="shop.acme.test"]').waitFor({ timeout: 10_000 });
      expect(await page.locator('tr[data-cert-id="acme/shop.acme.test"]').innerText()).toMatch(/shop\.acme\.test[\s\S]*acme:shop\.acme\.test[\s\S]*served/);
      pages.push(await page.content());
    } finally {
      await browser.close();
    }
  });

  it('a node killed while it holds the lock delays the other only until the lock expires', async () => {
    // pebble validates kill.acme.test through a listener that never answers,
    // so whichever node orders it holds its lock until it is killed.
    const held: Socket[] = [];
    const tarpit: Server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => tarpit.listen(httpPort, TARPIT_ADDRESS, resolve));
    try {
      await pebble.resolve('kill.acme.test', TARPIT_ADDRESS);
      await marathon.deploy({ id: '/kill', instances: 1, labels: { 'edgeroute.vhosts': 'kill.acme.test', 'edgeroute.acme': 'true' } });
      await waitFor('pebble validating through the tarpit', () => (held.length > 0 ? true : undefined), 20_000, 50);
      const holder = await client.get('edgeroute:acme:lock:kill.acme.test');
      const victim = nodes.find((node) => node.id === holder) as Node;
      const survivor = nodes.find((node) => node !== victim) as Node;
      expect(victim).toBeDefined();
      process.kill(victim.agent.pid, 'SIGKILL');
      await waitFor('the victim gone', () => (processAlive(victim.agent.pid) ? undefined : true), 5_000, 20);
      const killedAt = Date.now();
      killedOutput.push(victim.agent.output());
      // Now the CA reaches the survivor (its agent pushes its own challenges), and the tarpit's validation fails.
      await pebble.resolve('kill.acme.test', survivor.address);
      await pebble.resolve('shop.acme.test', survivor.address);
      for (const socket of held) socket.destroy();
      const cert = await waitFor('the certificate on the survivor', () => pebbleCertificate(survivor, 'kill.acme.test'), 30_000, 100);
      expect(cert).toBeDefined();
      const stored = JSON.parse((await client.get('edgeroute:acme:cert:kill.acme.test')) as string) as { by: string; issuedAt: string };
      expect(stored.by).toBe(survivor.id);
      console.log(`acme: survivor ${survivor.id} had the certificate ${Date.now() - killedAt} ms after ${victim.id} was killed (lock ${LOCK_SECONDS} s)`);
    } finally {
      tarpit.close();
      for (const socket of held) socket.destroy();
    }
  }, 60_000);

  it('refuses ACME flags that cannot work, saying why', async () => {
    const bin = join(PROJECT_ROOT, 'bin', 'edgeroute.js');
    const run = (args: string[]) => execa(process.execPath, [bin, 'agent', '--marathon', 'http://127.0.0.1:1', '--listen', 'off', ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: 'x' } });
    // Each start of the CLI costs a second or two of CPU: two of them.
    const [noRedis, noUrl] = await Promise.all([
      run(['--acme-directory', pebble.directory, '--acme-email', 'ops@acme.test']),
      run(['--redis', redis.url, '--acme-directory', 'pebble', '--acme-email', 'ops@acme.test']),
    ]);
    expect([noRedis.exitCode, noRedis.stderr]).toEqual([2, expect.stringContaining('--acme-directory needs Redis')]);
    expect([noUrl.exitCode, noUrl.stderr]).toEqual([2, expect.stringContaining('--acme-directory must be an http(s) URL')]);
  });

  it('never writes a private key to a log or the state', async () => {
    const keys: string[] = [];
    for (const key of await client.keys('edgeroute:acme:cert:*')) keys.push((JSON.parse((await client.get(key)) as string) as { keyPem: string }).keyPem);
    for (const account of Object.values(await client.hgetall('edgeroute:acme:account'))) keys.push((JSON.parse(account) as { keyPem: string }).keyPem);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    const bodies = keys.map((pem) => pem.split('\n').filter((line) => line && !line.startsWith('-----')).join(''));
    const texts = [...killedOutput, ...pages, pebble.output()];
    for (const node of nodes) {
      // The certificate snapshot nginx loads at start holds --certs keys only: ACME keys stay off the disk.
      const snapshot = readFileSync(`${node.nginx.snapshotFile}.certs`, 'utf8');
      expect(JSON.parse(snapshot)).toMatchObject({ certs: [] });
      texts.push(snapshot, node.agent.output(), node.nginx.process.errorLog());
      if (processAlive(node.agent.pid)) texts.push(JSON.stringify(await state(node)), await (await fetch(`${node.apiUrl}/metrics`)).text());
    }
    const all = texts.join('\n').replace(/\\n/g, '').replace(/\s/g, '');
    for (const body of bodies) {
      expect(body.length).toBeGreaterThan(40);
      expect(all).not.toContain(body.slice(0, 40));
    }
  });
});
