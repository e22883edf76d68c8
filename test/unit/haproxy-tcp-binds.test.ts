// edgeroute.tcpBind on HAProxy nodes, the pure parts: whether a listener of
// the TCP frontend receives ADDRESS:PORT, the listeners haproxy.cfg gets for
// address-bound ports, the reload plan, another process on the address, and
// whether the node has the address.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readConfRecord } from '../../agent/dataplane/haproxy/conf-record.js';
import { canBind, LocalAddresses } from '../../agent/dataplane/haproxy/local-addresses.js';
import { PortClashes, type Listener } from '../../agent/dataplane/haproxy/port-clashes.js';
import { hasNeeds, planReload } from '../../agent/dataplane/haproxy/reload-plan.js';
import { haproxyConfFiles, renderHaproxyConf } from '../../agent/dataplane/haproxy/render.js';
import { bindKey, listenHost, parseBindKey, parseStrVar, receives, wildcardOn, type TcpListeners } from '../../agent/dataplane/haproxy/tcp-binds.js';
import { captureLog } from '../helpers/log-capture.js';

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-tcp-binds-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const listeners = (over: Partial<TcpListeners>): TcpListeners => ({ hosts: ['127.0.0.1'], range: { from: 10000, to: 10010 }, extraPorts: new Set([12000]), binds: new Set(), ...over });

describe('receives', () => {
  it('a listener of its own, or a listen host that is the address with the port bound there', () => {
    expect(receives(listeners({}), '127.0.0.1', 10005)).toBe(true);
    expect(receives(listeners({}), '127.0.0.1', 12000)).toBe(true);
    expect(receives(listeners({}), '127.0.0.1', 12001)).toBe(false);
    expect(receives(listeners({}), '127.0.0.2', 10005)).toBe(false);
    expect(receives(listeners({ binds: new Set(['127.0.0.2/10005']) }), '127.0.0.2', 10005)).toBe(true);
    expect(receives(listeners({ binds: new Set(['::1/7000']) }), '::1', 7000)).toBe(true);
  });

  it('every address of the family: * for IPv4, :: for IPv6; an IPv4 address on a dual-stack [::] is not (its dst is ::ffff:a.b.c.d)', () => {
    expect(receives(listeners({ hosts: ['*'] }), '10.0.0.42', 10005)).toBe(true);
    expect(receives(listeners({ hosts: ['*'] }), '::1', 10005)).toBe(false);
    expect(receives(listeners({ hosts: ['::'] }), 'fd00::2', 10005)).toBe(true);
    expect(receives(listeners({ hosts: ['::'] }), '127.0.0.2', 10005)).toBe(false);
    expect(wildcardOn(listeners({ hosts: ['::'] }), 10005)).toBe(true);
    expect(wildcardOn(listeners({ hosts: ['*'] }), 12001)).toBe(false);
    expect(wildcardOn(listeners({}), 10005)).toBe(false);
  });

  it('a config from before edgeroute.tcpBind (no hosts variable) receives nothing by address but its own listeners', () => {
    expect(receives(listeners({ hosts: null }), '127.0.0.1', 10005)).toBe(false);
  });

  it('reads keys, hosts and variables', () => {
    expect(bindKey('::1', 7000)).toBe('::1/7000');
    expect(parseBindKey('::1/7000')).toEqual({ address: '::1', port: 7000 });
    expect(parseBindKey('127.0.0.2/7000')).toEqual({ address: '127.0.0.2', port: 7000 });
    for (const bad of ['7000', 'x/7000', '127.0.0.2/0', '127.0.0.2/70000', '/7000']) expect(parseBindKey(bad), bad).toBeNull();
    expect(['', '*', '0.0.0.0', '[::]', '[::1]', '127.0.0.1'].map(listenHost)).toEqual(['*', '*', '*', '::', '::1', '127.0.0.1']);
    expect(parseStrVar('proc.edgeroute_tcp_binds: type=str value=<127.0.0.2/27000|::1/27001>\n')).toBe('127.0.0.2/27000|::1/27001');
    expect(parseStrVar('proc.edgeroute_tcp_hosts: type=str value=<>\n')).toBe('');
    expect(parseStrVar('Variable not found.\n')).toBeNull();
  });
});

describe('haproxy.cfg for address-bound TCP ports', () => {
  const conf = (files: ReturnType<typeof haproxyConfFiles>) => files.files.find((f) => f.path === files.confPath)!.content;

  it('binds ADDRESS:PORT once each (IPv6 in brackets), not where a listen host already receives it, and publishes them and the hosts', () => {
    const files = haproxyConfFiles({ outDir: scratch(), listen: ['127.0.0.1:8080'], tcpPorts: '10000-10010', extraTcpBinds: ['127.0.0.2/10005', '::1/7000', '127.0.0.1/10003', '127.0.0.2/10005'] });
    const text = conf(files);
    expect(text).toContain('bind 127.0.0.1:10000-10010\n');
    expect(text).toContain('bind 127.0.0.2:10005\n');
    expect(text).toContain('bind [::1]:7000\n');
    expect(text).not.toContain('bind 127.0.0.1:10003');
    expect(text).toContain('set-var proc.edgeroute_tcp_hosts str(127.0.0.1)\n');
    expect(text).toContain('set-var proc.edgeroute_tcp_binds str(127.0.0.1/10003|127.0.0.2/10005|::1/7000)\n');
    expect(files.tcp?.extraBinds).toEqual(['127.0.0.1/10003', '127.0.0.2/10005', '::1/7000']);
  });

  it('gets a TCP section from address-bound ports alone; a listen on every address receives them all', () => {
    const alone = haproxyConfFiles({ outDir: scratch(), listen: ['127.0.0.1:8080'], extraTcpBinds: ['127.0.0.2/7000'] });
    expect(conf(alone)).toContain('bind 127.0.0.2:7000\n');
    expect(alone.tcp).toMatchObject({ from: null, extraPorts: [], extraBinds: ['127.0.0.2/7000'] });
    const everywhere = haproxyConfFiles({ outDir: scratch(), listen: ['8080'], tcpPorts: '10000-10010', extraTcpBinds: ['10.0.0.42/10001'] });
    expect(conf(everywhere)).not.toContain('bind 10.0.0.42');
    expect(conf(everywhere)).toContain('set-var proc.edgeroute_tcp_hosts str(*)\n');
  });

  it('records them, so a re-render binds them again; refuses what is not ADDRESS/PORT', () => {
    const dir = scratch();
    renderHaproxyConf({ outDir: dir, listen: ['127.0.0.1:8080'], extraTcpBinds: ['127.0.0.2/7000'] });
    expect(readConfRecord(dir).extraTcpBinds).toEqual(['127.0.0.2/7000']);
    expect(() => haproxyConfFiles({ outDir: scratch(), listen: ['8080'], extraTcpBinds: ['127.0.0.2:7000'] })).toThrow(/ADDRESS\/PORT/);
  });
});

describe('planReload with address-bound ports', () => {
  it('keeps the recorded listeners and adds the waiting ones; they alone are a need', () => {
    const stat = { pool: ['pool-1'], tcpPool: [], servers: [] };
    const plan = planReload(stat, { http: 0, tcp: 1, ports: [], binds: ['::1/7000'] }, { tcpBackendPool: 4, extraTcpPorts: [], extraTcpBinds: ['127.0.0.2/7000'], tcpSection: true });
    expect(plan.extraTcpBinds).toEqual(['127.0.0.2/7000', '::1/7000']);
    expect(hasNeeds({ http: 0, tcp: 0, ports: [], binds: ['::1/7000'] })).toBe(true);
    expect(planReload(stat, { http: 0, tcp: 0, ports: [] }, { tcpBackendPool: 4, extraTcpPorts: [], tcpSection: false }).extraTcpBinds).toEqual([]);
  });
});

describe('PortClashes for address-bound ports', () => {
  const l = (address: string, port: number, inode: number): Listener => ({ address, port, inode });

  it('another process on the address, or on every address, takes it (one warning naming app, address and holder); another address does not', async () => {
    const logs = captureLog();
    let found = [l('127.0.0.2', 7000, 1), l('127.0.0.3', 7001, 2), l('*', 7002, 3), l('[::1]', 7003, 4)];
    const clashes = new PortClashes(logs.log, { maxAgeMs: 0, read: async () => found, owners: async () => new Map([[1, 'pid 9 mosquitto']]) });
    const at = ['127.0.0.2/7000', '127.0.0.2/7001', '127.0.0.2/7002', '::1/7003'];
    await clashes.refresh([], null, { at });
    expect(clashes.takenAt('/a', '127.0.0.2', 7000)).toBe(true);
    expect(clashes.takenAt('/b', '127.0.0.2', 7001)).toBe(false);
    expect(clashes.takenAt('/c', '127.0.0.2', 7002)).toBe(true);
    expect(clashes.takenAt('/d', '::1', 7003)).toBe(true);
    await clashes.refresh([], null, { at });
    expect(clashes.takenAt('/a', '127.0.0.2', 7000)).toBe(true);
    expect(logs.lines().filter((x) => x.level === 40).map((x) => [x.app, x.msg])).toEqual([
      ['/a', 'app /a asks for TCP port 127.0.0.2:7000 (edgeroute.tcpBind), but another process on this node already listens there (127.0.0.2:7000 (pid 9 mosquitto)): the port is not routed on this node'],
      ['/c', 'app /c asks for TCP port 127.0.0.2:7002 (edgeroute.tcpBind), but another process on this node already listens there (*:7002): the port is not routed on this node'],
      ['/d', 'app /d asks for TCP port [::1]:7003 (edgeroute.tcpBind), but another process on this node already listens there ([::1]:7003): the port is not routed on this node'],
    ]);
    found = [];
    await clashes.refresh([], null, { at });
    expect(clashes.takenAt('/a', '127.0.0.2', 7000)).toBe(false);
  });

  it("HAProxy's own ADDRESS/PORT listeners are nobody else's, inside the range too", async () => {
    const logs = captureLog();
    const range = { from: 10000, to: 10001 };
    // HAProxy: the range on 127.0.0.1, and 127.0.0.2:10001 for an address-bound app.
    const found = [l('127.0.0.1', 10000, 1), l('127.0.0.1', 10001, 2), l('127.0.0.2', 10001, 3), l('[::1]', 10001, 4)];
    const clashes = new PortClashes(logs.log, { read: async () => found, owners: async () => new Map() });
    await clashes.refresh([10001], range, { own: ['127.0.0.2/10001', '::1/10001'] });
    clashes.routed('/every', 10001, range);
    expect(logs.lines().filter((x) => x.level === 40)).toEqual([]);
  });
});

describe('LocalAddresses', () => {
  it("tells the node's addresses by binding one (127.0.0.2 is loopback's on Linux) from those it does not have", async () => {
    expect(await canBind('127.0.0.2')).toBe(true);
    expect(await canBind('::1')).toBe(true);
    expect(await canBind('198.51.100.7')).toBe(false);
    expect(await canBind('2001:db8::7')).toBe(false);
  });

  it('looks at each address once per max age, and at a new one at once', async () => {
    const asked: string[] = [];
    const has = new Set(['127.0.0.2']);
    const local = new LocalAddresses({ maxAgeMs: 60_000, probe: async (a) => (asked.push(a), has.has(a)) });
    expect(local.has('10.0.0.42')).toBe(true);
    await local.refresh(['127.0.0.2', '10.0.0.42']);
    expect([local.has('127.0.0.2'), local.has('10.0.0.42')]).toEqual([true, false]);
    has.add('10.0.0.42');
    await local.refresh(['127.0.0.2', '10.0.0.42', '10.0.0.43']);
    expect(asked).toEqual(['127.0.0.2', '10.0.0.42', '10.0.0.43']);
    expect(local.has('10.0.0.42')).toBe(false);
  });
});
