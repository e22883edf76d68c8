import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppRoute, Backend } from '../../agent/core/routing-table.js';
import { HaproxyRuntime } from '../../agent/dataplane/haproxy/runtime-client.js';
import {
  diffHostMap,
  findMapFile,
  parseInfoGeneration,
  parseShowMap,
  parseGetVar,
  parseShowStat,
  poolKind,
  scaleWeights,
  tcpPortKey,
  serverName,
  unsupportedFeatures,
  wantedPoolKind,
} from '../../agent/dataplane/haproxy/runtime-plan.js';

const backend = (id: string, weight: number): Backend => ({ id, address: '10.0.0.1', port: 31000, weight });
const route = (extra: Partial<AppRoute> = {}): AppRoute => ({
  id: '/web',
  vhosts: ['web.test'],
  defaultVersion: 'stable',
  versions: { stable: { marathonAppId: '/web', backends: [] } },
  hash: 'h',
  ...extra,
});

describe('server names', () => {
  it('are stable, short, valid HAProxy identifiers, and differ by task and address', () => {
    const id = 'web.8a2f0c3e-1d2b-11ef-9a1b-0242ac110002';
    const name = serverName(id, '10.0.0.1', 31000);
    expect(name).toBe(serverName(id, '10.0.0.1', 31000));
    expect(name).toMatch(/^t[0-9a-f]{20}$/);
    expect(serverName(id, '10.0.0.2', 31000)).not.toBe(name);
    expect(serverName(id, '10.0.0.1', 31001)).not.toBe(name);
    expect(serverName(`${id}x`, '10.0.0.1', 31000)).not.toBe(name);
  });
});

describe('weight scaling', () => {
  it('maps the heaviest task to 256 and keeps every routed task at 1 or more', () => {
    expect([...scaleWeights([backend('a', 100), backend('b', 100)]).values()]).toEqual([256, 256]);
    expect(Object.fromEntries(scaleWeights([backend('a', 10_000), backend('b', 1), backend('c', 5_000)]))).toEqual({ a: 256, b: 1, c: 128 });
    // A warming task at 1% of the default weight keeps a share.
    expect(scaleWeights([backend('a', 100), backend('warm', 1)]).get('warm')).toBe(3);
    expect(scaleWeights([])).toEqual(new Map());
  });
});

describe('host map diff', () => {
  it('sets new and moved hosts, deletes the scope\'s hosts no app wants, leaves the rest', () => {
    const current = new Map([
      ['a.test', 'pool-1'],
      ['b.test', 'pool-1'],
      ['c.test', 'pool-2'],
      ['other.test', 'pool-3'],
    ]);
    const desired = new Map([
      ['a.test', 'pool-1'],
      ['c.test', 'pool-1'],
      ['d.test', 'pool-1'],
    ]);
    const edits = diffHostMap(current, desired, ['a.test', 'b.test', 'c.test', 'd.test']);
    expect([...edits.set]).toEqual([
      ['c.test', 'pool-1'],
      ['d.test', 'pool-1'],
    ]);
    expect(edits.del).toEqual(['b.test']);
  });
});

describe('what an HAProxy node does not apply', () => {
  it('names the connect timeout and leastconn with sticky, not what the Lua action and the balance pools apply', () => {
    expect(unsupportedFeatures(route())).toEqual([]);
    expect(unsupportedFeatures(route({ paths: { 'web.test': ['/'] } }))).toEqual([]);
    expect(
      unsupportedFeatures(
        route({
          paths: { 'web.test': ['/api', '/'] },
          vhosts: ['web.test', '*.web.test'],
          settings: { sticky: 'sid', readTimeout: 5, balance: 'leastconn', connectTimeout: 1, stripPath: true },
          versions: { stable: { marathonAppId: '/web', backends: [] }, grey: { marathonAppId: '/web-grey', backends: [] } },
        }),
      ),
    ).toEqual(['edgeroute.balance=leastconn together with edgeroute.sticky', 'edgeroute.connectTimeout']);
    expect(unsupportedFeatures(route({ settings: { sticky: 'sid' } }))).toEqual([]);
    expect(unsupportedFeatures(route({ settings: { balance: 'leastconn' } }))).toEqual([]);
  });
});

describe('runtime API answers', () => {
  it('reads show map, the map list, show info and show stat', () => {
    expect(parseShowMap('0x55 a.test pool-1\n0x56 b.test pool-2\n0x57 a.test pool-9\n')).toEqual(
      new Map([
        ['a.test', 'pool-1'],
        ['b.test', 'pool-2'],
      ]),
    );
    const list = "# id (file) description\n4 (/etc/edgeroute/hosts.map) pattern loaded from file '/etc/edgeroute/hosts.map' used by map at file 'x' line 50.\n";
    expect(findMapFile(list, 'hosts.map')).toBe('/etc/edgeroute/hosts.map');
    expect(findMapFile(list, 'paths.map')).toBeNull();
    expect(parseInfoGeneration('Name: HAProxy\nPid: 1234\nStart_time_sec: 1795974624\n')).toBe('1234@1795974624');
    const stat = [
      '# pxname,svname,qcur,qmax,scur,smax,status,weight,addr,uweight',
      'edgeroute-http,FRONTEND,,,0,0,OPEN,,,',
      'pool-10,BACKEND,0,0,0,0,DOWN,0,,',
      'pool-2,tabc,1,0,3,0,DRAIN,0,10.0.0.1:31000,7',
      'pool-2,BACKEND,0,0,3,0,UP,0,,',
      'edgeroute-no-app,BACKEND,0,0,0,0,UP,0,,',
      'tcp-pool-1,techo,0,0,2,0,UP,0,10.0.0.2:31001,256',
      'tcp-pool-1,BACKEND,0,0,2,0,UP,0,,',
      'edgeroute-no-tcp-app,BACKEND,0,0,0,0,UP,0,,',
      'pool-sticky-1,BACKEND,0,0,0,0,DOWN,0,,',
      'pool-lc-2,tlc,0,0,1,0,UP,0,10.0.0.3:31002,256',
      'pool-lc-2,BACKEND,0,0,1,0,UP,0,,',
      'pool-lc-10,BACKEND,0,0,0,0,DOWN,0,,',
    ].join('\n');
    expect(parseShowStat(stat)).toEqual({
      pool: ['pool-2', 'pool-10'],
      tcpPool: ['tcp-pool-1'],
      balancePool: ['pool-lc-2', 'pool-lc-10', 'pool-sticky-1'],
      servers: [
        { backend: 'pool-2', name: 'tabc', address: '10.0.0.1', port: 31000, weight: 7, status: 'DRAIN', busy: 4 },
        { backend: 'tcp-pool-1', name: 'techo', address: '10.0.0.2', port: 31001, weight: 256, status: 'UP', busy: 2 },
        { backend: 'pool-lc-2', name: 'tlc', address: '10.0.0.3', port: 31002, weight: 256, status: 'UP', busy: 1 },
      ],
    });
  });

  it('tells the pool of a backend and the pool an app wants (sticky over leastconn)', () => {
    expect(['pool-3', 'pool-lc-3', 'pool-sticky-3'].map(poolKind)).toEqual(['roundrobin', 'leastconn', 'sticky']);
    expect(wantedPoolKind(route())).toBe('roundrobin');
    expect(wantedPoolKind(route({ settings: { balance: 'leastconn' } }))).toBe('leastconn');
    expect(wantedPoolKind(route({ settings: { balance: 'leastconn', sticky: 'sid' } }))).toBe('sticky');
  });

  it('reads the TCP port range from get var, and tells which ports it routes', () => {
    expect(parseGetVar('proc.edgeroute_tcp_ports_from: type=sint value=<10000>\n')).toBe(10000);
    expect(parseGetVar('Variable not found.\n')).toBeNull();
    expect(tcpPortKey(10001, { from: 10000, to: 10100 })).toEqual({ ok: true, key: '10001' });
    expect(tcpPortKey(9999, { from: 10000, to: 10100 })).toMatchObject({ ok: false, why: expect.stringContaining('outside the TCP port range') });
    expect(tcpPortKey(10001, null)).toMatchObject({ ok: false, why: expect.stringContaining('--tcp-ports') });
  });
});

describe('runtime API client', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });

  it('speaks prompt mode: pipelined commands, replies split on the prompt even across chunks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeroute-rt-'));
    const path = join(dir, 's.sock');
    const seen: string[] = [];
    const server: Server = createServer((conn) => {
      let buf = '';
      conn.setEncoding('utf8');
      conn.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        let out = '';
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          seen.push(line);
          if (line === 'prompt' || line.startsWith('set timeout')) out += '\n> ';
          else if (line === 'two') out += 'line 1\nline 2\n\n> ';
          else out += '\n> ';
        }
        // Split the answer mid-prompt to test the framing.
        const cut = Math.max(1, out.length - 1);
        conn.write(out.slice(0, cut));
        setTimeout(() => conn.write(out.slice(cut)), 5);
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = new HaproxyRuntime(path, 2_000);
    cleanup.push(() => {
      client.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });
    expect(await client.run(['two', 'empty', 'two'])).toEqual(['line 1\nline 2', '', 'line 1\nline 2']);
    expect(await client.one('empty')).toBe('');
    expect(seen).toEqual(['prompt', 'set timeout cli 3600', 'two', 'empty', 'two', 'empty']);
    await expect(client.run(['a\nb'])).rejects.toThrow(/line break/);
  });
});
