// Certificates by SNI through a real HAProxy 2.6: `agent --haproxy-socket
// --certs DIR` adds the folder's certificates to haproxy.cfg's crt-list
// through the runtime API (new/set/commit ssl cert, add ssl crt-list); files
// added, replaced and removed take effect within seconds, an unknown name
// gets haproxy-conf's --tls-cert, HAProxy is never reloaded, and keys reach
// neither the agent's log nor HAProxy's folder.
import { readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { makeCertFolder, peerCertificate, type CertFolder } from '../helpers/test-certs.js';

let folder: CertFolder;
let certs: string;
let keys: string[];
let marathon: MarathonSim;
let node: HaproxyRoutingNode;
let masterPid: number;
let workerPid: number;

/** The certificate HAProxy presents for `servername` (none: no SNI sent). */
const handshake = (servername?: string) => peerCertificate(node.haproxy.tlsPort as number, servername);

async function served(servername?: string): Promise<string> {
  return (await handshake(servername)).subject.CN as string;
}

/** Every file under `dir`, read (HAProxy's folder: haproxy.cfg, maps, tls/). */
function filesUnder(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n');
}

beforeAll(async () => {
  folder = await makeCertFolder('edgeroute-hacerts-');
  certs = folder.dir;
  keys = folder.keys;
  marathon = await MarathonSim.start();
  node = await startHaproxyRoutingNode(marathon.url, { certs, listen: '127.0.0.1:0' }, { tls: { cert: folder.staticCert, key: folder.staticKey } });
  await node.agent.ready;
  masterPid = node.haproxy.masterPid();
  workerPid = await node.haproxy.workerPid();
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
  folder?.remove();
});

describe('certificates by SNI on HAProxy', () => {
  it('serves each certificate for its names, the wildcard for one label, else the default one', async () => {
    // A pair changed less than a second before a scan waits for the next one
    // (it may be half written); on a loaded machine the folder's pairs are
    // finished seconds apart, so every one is waited for, not the first.
    await waitFor('the certificates in HAProxy', async () => {
      for (const [name, cn] of [['a.test', 'a.test'], ['x.wild.test', '*.wild.test'], ['cb.test', 'cb.test']]) {
        if ((await served(name)) !== cn) return undefined;
      }
      return true;
    }, 15_000, 100);
    expect(await served('www.a.test')).toBe('a.test');
    expect(await served('x.wild.test')).toBe('*.wild.test');
    expect(await served('y.x.wild.test')).toBe('static.test');
    expect(await served('cb.test')).toBe('cb.test');
    expect(await served('nobody.test')).toBe('static.test');
    expect(await served(undefined)).toBe('static.test');
  });

  it('serves a certificate added after the agent started within seconds', async () => {
    const started = Date.now();
    await folder.add('added', ['added.test']);
    await waitFor('the added certificate', async () => ((await served('added.test')) === 'added.test' ? true : undefined), 10_000, 100);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('serves a replaced certificate, with its new serial, within seconds', async () => {
    const before = await handshake('a.test');
    await folder.add('a', ['a.test', 'www.a.test', 'new.a.test']);
    const after = await waitFor('the replaced certificate', async () => {
      const now = await handshake('a.test');
      return now.serialNumber !== before.serialNumber ? now : undefined;
    }, 10_000, 100);
    expect(after.subjectaltname).toContain('DNS:new.a.test');
    // The crt-list entry's SNI filters follow the new names.
    await waitFor('the new name', async () => ((await served('new.a.test')) === 'a.test' ? true : undefined), 10_000, 100);
    expect((await handshake('www.a.test')).serialNumber).toBe(after.serialNumber);
  });

  it('falls back to the default certificate for a removed one within seconds', async () => {
    unlinkSync(join(certs, 'wild.crt'));
    unlinkSync(join(certs, 'wild.key'));
    await waitFor('the default certificate for the removed wildcard', async () => ((await served('x.wild.test')) === 'static.test' ? true : undefined), 10_000, 100);
    const held = await node.haproxy.runtime('show ssl cert');
    expect(held).not.toMatch(/wild/);
    expect(await served('a.test')).toBe('a.test');
  });

  it('pushes only when the set changes: HAProxy is read every scan, not written', async () => {
    const pushes = () => node.logs.lines().filter((line) => line.msg === 'certificates pushed to HAProxy').length;
    const before = pushes();
    // Two scans (one every 2 s) pass.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(pushes()).toBe(before);
    expect(await node.haproxy.runtime(`show ssl crt-list ${join(node.haproxy.dir, 'tls', 'certs.list')}`)).toMatch(/sni-a\.crt-\w+\.pem a\.test new\.a\.test www\.a\.test/);
  });

  it('never reloaded HAProxy', async () => {
    expect(node.haproxy.masterPid()).toBe(masterPid);
    expect(await node.haproxy.workerPid()).toBe(workerPid);
  });

  it('keeps keys out of the agent log and off HAProxy folder', () => {
    const logText = JSON.stringify(node.logs.lines()) + node.haproxy.log();
    expect(node.logs.has((l) => String(l.msg).includes('certificates pushed to HAProxy'))).toBe(true);
    expect(logText).not.toContain('PRIVATE KEY');
    const written = filesUnder(node.haproxy.dir);
    expect(statSync(join(node.haproxy.dir, 'tls', 'certs.list')).size).toBe(0);
    for (const key of keys) {
      expect(logText).not.toContain(key);
      expect(written).not.toContain(key);
    }
  });

  it('fills a restarted HAProxy again', async () => {
    await node.haproxy.restart();
    await waitFor('the agent to fill the restarted HAProxy', async () => ((await served('added.test')) === 'added.test' ? true : undefined), 10_000, 100);
    expect(await served('cb.test')).toBe('cb.test');
    expect(await served('x.wild.test')).toBe('static.test');
  });
});
