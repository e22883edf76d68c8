// edgeroute.tcpBind, and marathon-lb's HAPROXY_{n}_BIND_ADDR read as it,
// through a real HAProxy node whose agent may reload it (--haproxy-conf-dir):
// an app's TCP port bound to one address answers on that address only (a
// listener the agent adds with one seamless reload, under TCP load on another
// app, zero failed connections); the same port on other addresses belongs to
// other apps; the same address and port twice is warned about; IPv6; and an
// address the node does not have leaves that port unrouted with one warning,
// the rest of the app routed, no reload. Tasks are TCP echo servers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/sandbox/wait.js';
import { AGENT_DEFAULTS, startAgent, type RunningAgent } from '../../agent/run-agent.js';
import { canBind } from '../../agent/dataplane/haproxy/local-addresses.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { reloadsLogged, reloadsOnceLogged, reloadStory, startHaproxy, type HaproxyProcess } from '../helpers/haproxy-node.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';
import { EchoServers, exchange, freePortRange, startTcpLoad, type TcpTarget } from '../helpers/tcp-echo.js';
import { processAlive as alive } from '../helpers/process-alive.js';

interface FixtureApp {
  id: string;
  labels: Record<string, string>;
}

const FIXTURE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'marathon-lb', 'apps.json'), 'utf8')) as { apps: FixtureApp[] };
const MQTT = FIXTURE.apps.find((a) => a.id === '/data/mqtt')!;
const RANGE = 4;
let marathon: MarathonSim;
let haproxy: HaproxyProcess;
let agent: RunningAgent;
let logs: CapturedLog;
let base: number;
const echoes = new EchoServers();
const reloads = () => reloadsLogged(logs);
const servicePort = (port: number, name = 'tcp') => ({ portDefinitions: [{ port, protocol: 'tcp', name, labels: {} }] });
const at = (host: string, port: number): TcpTarget => ({ host, port });

/** Until every connection to target reaches exactly these echoes. */
async function reaches(target: TcpTarget, names: readonly string[], timeoutMs = 20_000): Promise<void> {
  await waitFor(`${JSON.stringify(target)} reaching ${names.join(', ')}`, async () => {
    const got = new Set<string>();
    for (let i = 0; i < names.length * 6; i++) got.add(await exchange(target).catch(() => '?'));
    return [...got].sort().join(',') === [...names].sort().join(',') ? true : undefined;
  }, timeoutMs);
}

async function closed(target: TcpTarget): Promise<void> {
  for (let i = 0; i < 5; i++) await expect(exchange(target), JSON.stringify(target)).rejects.toThrow();
}

beforeAll(async () => {
  marathon = await MarathonSim.start({ heartbeatMs: 500 });
  base = await freePortRange(RANGE);
  haproxy = await startHaproxy({ backendPool: 2, tcpPorts: `${base}-${base + RANGE - 1}`, tcpBackendPool: 4 });
  logs = captureLog();
  agent = startAgent(
    { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: '', haproxySocket: haproxy.socket, haproxyConfDir: haproxy.dir, adminToken: 'an-api-token-of-16-chars', redis: null, group: 'internal', marathonLbLabels: true },
    logs.log,
  );
}, 30_000);

afterAll(async () => {
  await agent?.stop();
  await haproxy?.stop();
  await marathon?.stop();
  await echoes.stopAll();
});

describe('TCP ports bound to one address on an HAProxy node (edgeroute.tcpBind, HAPROXY_n_BIND_ADDR)', () => {
  it("HAPROXY_0_BIND_ADDR=127.0.0.2 (the fixture's /data/mqtt): answers there and not on 127.0.0.1 at the same port; the listener comes with one reload under TCP load on another app, zero failed connections", async () => {
    const plain = [await echoes.start('plain-0'), await echoes.start('plain-1')];
    await marathon.deploy({ id: '/plain', instances: 2, backendPorts: plain, labels: { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': String(base) } });
    await reaches(base, ['plain-0', 'plain-1']);
    const before = reloads();
    const oldWorker = await haproxy.workerPid();
    const load = startTcpLoad(base, 4);
    await waitFor('traffic', () => (load.sent() > 100 ? true : undefined), 10_000);
    // The fixture's labels as they are, its address one this node has; the service port inside the range, which 127.0.0.1 binds.
    await marathon.deploy({ id: MQTT.id, instances: 1, backendPorts: [await echoes.start('mqtt-0')], labels: { ...MQTT.labels, HAPROXY_0_BIND_ADDR: '127.0.0.2' }, extra: servicePort(base + 1, 'mqtt') });
    await reaches(at('127.0.0.2', base + 1), ['mqtt-0']);
    await closed(base + 1);
    await waitFor('the old worker gone', () => (!alive(oldWorker) ? true : undefined), 15_000);
    const after = load.sent();
    await waitFor('more traffic', () => (load.sent() > after + 200 ? true : undefined), 10_000);
    const report = await load.stop();
    console.log(`bind 127.0.0.2: TCP load on another app ${report.sent} connections, ${report.failures.length} failed across the reload`);
    expect(report.failures).toEqual([]);
    // Logged after every app is re-applied, which can be after the listener answered and the old worker left.
    expect(await reloadsOnceLogged(logs, before + 1), reloadStory(logs, haproxy)).toBe(before + 1);
    expect(JSON.parse(readFileSync(join(haproxy.dir, 'haproxy-conf.json'), 'utf8')).options.extraTcpBinds).toEqual([`127.0.0.2/${base + 1}`]);
    expect(readFileSync(join(haproxy.dir, 'haproxy.cfg'), 'utf8')).toContain(`\n    bind 127.0.0.2:${base + 1}\n`);
    expect(logs.has((l) => l.app === MQTT.id && String(l.msg).includes(`TCP port 127.0.0.2:${base + 1} (edgeroute.tcpBind, or HAPROXY_0_BIND_ADDR)`) && String(l.msg).includes('HAProxy will be reloaded'))).toBe(true);
  }, 60_000);

  it('the same port on another address is another app, an app on every listen host gets that port elsewhere; the same address and port twice: one warning naming both', async () => {
    const port = base + 1;
    await marathon.deploy({ id: '/three', instances: 1, backendPorts: [await echoes.start('three-0')], labels: { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': String(port), 'edgeroute.tcpBind': '127.0.0.3' } });
    await reaches(at('127.0.0.3', port), ['three-0']);
    // In the range: 127.0.0.1 already listens, no reload.
    const before = reloads();
    await marathon.deploy({ id: '/every', instances: 1, backendPorts: [await echoes.start('every-0')], labels: { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': String(port) } });
    await reaches(port, ['every-0']);
    await reaches(at('127.0.0.2', port), ['mqtt-0']);
    await reaches(at('127.0.0.3', port), ['three-0']);
    // Later by id than /data/mqtt: the address and port stay /data/mqtt's.
    await marathon.deploy({ id: '/data/mqtt2', instances: 1, backendPorts: [await echoes.start('mqtt2-0')], labels: { ...MQTT.labels, HAPROXY_0_BIND_ADDR: '127.0.0.2' }, extra: servicePort(port) });
    await waitFor('the clash warning', () => (logs.has((l) => l.app === '/data/mqtt2' && String(l.problem).includes(`TCP port 127.0.0.2:${port} is already routed to app /data/mqtt`)) ? true : undefined), 10_000);
    await reaches(at('127.0.0.2', port), ['mqtt-0']);
    expect(reloads()).toBe(before);
  }, 60_000);

  it('IPv6: an app bound to ::1 answers on [::1] only', async () => {
    const port = base + 2;
    await marathon.deploy({ id: '/v6', instances: 1, backendPorts: [await echoes.start('v6-0')], labels: { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': String(port), 'edgeroute.tcpBind': '::1' } });
    await reaches(at('::1', port), ['v6-0']);
    await closed(port);
    expect(readFileSync(join(haproxy.dir, 'haproxy.cfg'), 'utf8')).toContain(`\n    bind [::1]:${port}\n`);
    // The first app still answers where it did.
    await reaches(at('127.0.0.2', base + 1), ['mqtt-0']);
  }, 60_000);

  it("an address the node does not have (the fixture's own, 10.0.0.42): one warning naming app and label, that port not routed, the app's other port routed, no reload", async () => {
    expect(await canBind(MQTT.labels.HAPROXY_0_BIND_ADDR!)).toBe(false);
    const before = reloads();
    const far = [await echoes.start('far-0')];
    await marathon.deploy({
      id: '/data/far',
      instances: 1,
      backendPorts: far,
      morePorts: [far],
      labels: { HAPROXY_GROUP: 'internal', HAPROXY_1_BIND_ADDR: MQTT.labels.HAPROXY_0_BIND_ADDR! },
      extra: { portDefinitions: [{ port: base + 3, protocol: 'tcp', name: 'a', labels: {} }, { port: base + 2, protocol: 'tcp', name: 'b', labels: {} }] },
    });
    await reaches(base + 3, ['far-0']);
    const warned = () => logs.lines().filter((l) => l.app === '/data/far:1' && Number(l.level) === 40);
    await waitFor('the warning', () => (warned().length > 0 ? true : undefined), 10_000);
    expect(warned().map((l) => l.msg)).toEqual([`app /data/far:1 asks for TCP port 10.0.0.42:${base + 2} (edgeroute.port.1.tcpBind, or HAPROXY_1_BIND_ADDR), but this node has no address 10.0.0.42: the port is not routed on this node`]);
    // Another change to the app: still one warning, still no listener.
    await marathon.scale('/data/far', 2);
    await reaches(base + 3, ['far-0']);
    expect(warned()).toHaveLength(1);
    expect(reloads()).toBe(before);
    expect(readFileSync(join(haproxy.dir, 'haproxy.cfg'), 'utf8')).not.toContain('10.0.0.42');
    // [::1] at that port is still /v6's.
    await reaches(at('::1', base + 2), ['v6-0']);
  }, 60_000);
});
