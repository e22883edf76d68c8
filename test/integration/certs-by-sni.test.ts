// Certificates by SNI through real nginx: `agent --certs DIR` pushes the
// folder's certificates to the plugin, which serves them from
// ssl_certificate_by_lua; files added, replaced and removed take effect within
// seconds, bad files are refused with one warning, keys never leave the agent
// except to nginx and the 0600 snapshot, and nginx is never reloaded.
import { copyFileSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { AGENT_DEFAULTS, startAgent, type RunningAgent } from '../../agent/run-agent.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { launchBrowser } from '../helpers/browser.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';
import { makeCertFolder, peerCertificate, type CertFolder } from '../helpers/test-certs.js';

let folder: CertFolder;
let certs: string;
let keys: string[];
let marathon: MarathonSim;
let nginx: NginxNode;
let agent: RunningAgent;
let logs: CapturedLog;
let masterPid: number;
let workerPids: number[];

/** The certificate nginx presents for `servername` (none: no SNI sent). */
const handshake = (servername?: string) => peerCertificate(nginx.tlsPort as number, servername);

async function served(servername?: string): Promise<string> {
  return (await handshake(servername)).subject.CN as string;
}

const warnings = (file: string) => logs.lines().filter((line) => line.level === 40 && line.file === file);

beforeAll(async () => {
  folder = await makeCertFolder('edgeroute-certs-');
  certs = folder.dir;
  keys = folder.keys;
  await Promise.all([folder.add('old', ['old.test'], { expired: true }), folder.add('mismatch', ['mismatch.test'])]);
  // The mismatch's key is another certificate's.
  copyFileSync(join(certs, 'a.key'), join(certs, 'mismatch.key'));

  marathon = await MarathonSim.start();
  nginx = await startNginxNode({ workerProcesses: 2, tls: { cert: folder.staticCert, key: folder.staticKey } });
  masterPid = nginx.process.masterPid;
  workerPids = nginx.process.workerPids().sort();
  logs = captureLog();
  agent = startAgent(
    { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null, listen: '127.0.0.1:0', snapshotFile: nginx.snapshotFile, certs },
    logs.log,
  );
  await agent.ready;
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await nginx?.process.stop();
  await marathon?.stop();
  folder?.remove();
});

describe('certificates by SNI', () => {
  it('serves each certificate for its names, the wildcard for one label, else the static one', async () => {
    // A pair changed less than a second before a scan waits for the next one
    // (it may be half written); on a loaded machine the folder's pairs are
    // finished seconds apart, so every one is waited for, not the first.
    await waitFor('the certificates in nginx', async () => {
      for (const [name, cn] of [['a.test', 'a.test'], ['x.wild.test', '*.wild.test'], ['cb.test', 'cb.test']]) {
        if ((await served(name)) !== cn) return undefined;
      }
      return true;
    }, 15_000);
    expect(await served('www.a.test')).toBe('a.test');
    expect(await served('WWW.A.TEST')).toBe('a.test');
    expect(await served('x.wild.test')).toBe('*.wild.test');
    expect(await served('y.x.wild.test')).toBe('static.test');
    expect(await served('wild.test')).toBe('static.test');
    expect(await served('cb.test')).toBe('cb.test');
    expect(await served('nobody.test')).toBe('static.test');
    expect(await served(undefined)).toBe('static.test');
  });

  it('refuses a mismatched key and an expired certificate with one warning each, naming the file', async () => {
    // Several scans (one every 2 s) pass: still one warning each.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await served('mismatch.test')).toBe('static.test');
    expect(await served('old.test')).toBe('static.test');
    const mismatch = warnings(join(certs, 'mismatch.crt'));
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]?.msg).toBe(`certificate ${join(certs, 'mismatch.crt')} refused: the key ${join(certs, 'mismatch.key')} does not match the certificate ${join(certs, 'mismatch.crt')}`);
    const old = warnings(join(certs, 'old.crt'));
    expect(old).toHaveLength(1);
    expect(old[0]?.msg).toContain('expired on 2020-01-02T00:00:00.000Z');
    expect(logs.lines().filter((line) => line.level === 40)).toHaveLength(2);
    expect(await served('a.test')).toBe('a.test');
  });

  it('serves a certificate added after the agent started within seconds', async () => {
    const started = Date.now();
    await folder.add('added', ['added.test']);
    await waitFor('the added certificate', async () => ((await served('added.test')) === 'added.test' ? true : undefined), 10_000, 100);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('serves a replaced certificate within seconds', async () => {
    const before = await handshake('a.test');
    const started = Date.now();
    await folder.add('a', ['a.test', 'www.a.test', 'new.a.test']);
    const after = await waitFor('the replaced certificate', async () => {
      const now = await handshake('a.test');
      return now.fingerprint256 !== before.fingerprint256 ? now : undefined;
    }, 10_000, 100);
    expect(after.subjectaltname).toContain('DNS:new.a.test');
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(await served('new.a.test')).toBe('a.test');
  });

  it('stops serving a removed certificate within seconds', async () => {
    unlinkSync(join(certs, 'wild.crt'));
    unlinkSync(join(certs, 'wild.key'));
    await waitFor('the static certificate for the removed wildcard', async () => ((await served('x.wild.test')) === 'static.test' ? true : undefined), 10_000, 100);
  });

  it('lists certificates in /v1/state and the metrics, without key material', async () => {
    const res = await fetch(`${agent.apiUrl}/v1/state`);
    const text = await res.text();
    const state = JSON.parse(text) as { certificates: Array<{ id: string; file: string; names: string[]; notAfter: string | null; status: string; problem: string | null }> };
    const byId = Object.fromEntries(state.certificates.map((c) => [c.id, c]));
    expect(Object.keys(byId).sort()).toEqual(['a.crt', 'added.crt', 'live/cb.test', 'mismatch.crt', 'old.crt']);
    expect(byId['a.crt']).toMatchObject({ file: join(certs, 'a.crt'), names: ['a.test', 'new.a.test', 'www.a.test'], status: 'served', problem: null });
    expect(Date.parse(byId['a.crt']?.notAfter ?? '')).toBeGreaterThan(Date.now());
    expect(byId['mismatch.crt']).toMatchObject({ status: 'refused' });
    expect(byId['old.crt']).toMatchObject({ status: 'refused', notAfter: '2020-01-02T00:00:00.000Z' });
    expect(text).not.toContain('PRIVATE KEY');
    for (const key of keys) expect(text).not.toContain(key.slice(0, 40));

    const metrics = await (await fetch(`${agent.apiUrl}/metrics`)).text();
    const expiry = /edgeroute_certificate_expiry_seconds\{name="a\.test"\} (\d+)/.exec(metrics);
    expect(Number(expiry?.[1])).toBeGreaterThan(29 * 86_400);
    expect(metrics).toMatch(/edgeroute_certificate_expiry_seconds\{name="old\.test"\} -\d+/);
  });

  it('lists certificates with their expiry on the dashboard', async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.browser.newPage();
      await page.goto(`${agent.apiUrl}/`);
      const a = page.locator('tr[data-cert-id="a.crt"]');
      await a.waitFor({ timeout: 10_000 });
      expect(await a.innerText()).toMatch(/a\.test[\s\S]*\d{4}-\d\d-\d\d \(in 29 days\)[\s\S]*served/);
      expect(await page.locator('tr[data-cert-id="old.crt"]').innerText()).toMatch(/2020-01-02 \(expired\)[\s\S]*refused[\s\S]*expired on/);
      const html = await page.content();
      expect(html).not.toContain('PRIVATE KEY');
      for (const key of keys) expect(html).not.toContain(key.slice(0, 40));
    } finally {
      await browser.close();
    }
  });

  it('keeps keys out of the logs and the feed, and in a 0600 snapshot', async () => {
    const logText = JSON.stringify(logs.lines()) + nginx.process.errorLog() + JSON.stringify(agent.feed.latest());
    expect(logText).not.toContain('PRIVATE KEY');
    for (const key of keys) expect(logText).not.toContain(key.slice(0, 40));
    const snapshot = `${nginx.snapshotFile}.certs`;
    await waitFor('the certificate snapshot', () => (readFileSync(snapshot, 'utf8').includes('added.test') ? true : undefined));
    expect(statSync(snapshot).mode & 0o777).toBe(0o600);
  });

  it('never reloaded or restarted nginx', () => {
    expect(nginx.process.masterPid).toBe(masterPid);
    expect(nginx.process.workerPids().sort()).toEqual(workerPids);
  });

  it('pushes again to a restarted nginx, and a restarted nginx serves the snapshot before the agent', async () => {
    // Without the snapshot, the restarted nginx has no set: the agent notices and pushes.
    rmSync(`${nginx.snapshotFile}.certs`);
    await nginx.restart();
    await waitFor('the agent to push to the restarted nginx', async () => ((await served('added.test')) === 'added.test' ? true : undefined), 10_000, 100);
    await waitFor('the snapshot rewritten', () => (statSync(`${nginx.snapshotFile}.certs`, { throwIfNoEntry: false }) ? true : undefined));
    // With the agent stopped, only the snapshot can bring the certificates back.
    await agent.stop();
    await nginx.restart();
    expect(await served('a.test')).toBe('a.test');
    expect(await served('cb.test')).toBe('cb.test');
    expect(nginx.process.errorLog()).toMatch(/loaded 3 certificates from/);
  });
});
