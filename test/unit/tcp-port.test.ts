// edgeroute.tcpPort and edgeroute.tcpBind: the labels, service ports from the
// app definition, the route's optional tcpPort and tcpBind, conflicts between
// apps, and nginx pushes that leave TCP-only apps out.
import { describe, expect, it } from 'vitest';
import { readRoutingLabels } from '../../agent/core/labels.js';
import { parseAppsResponse } from '../../agent/core/marathon-apps.js';
import type { MarathonApp, MarathonTask } from '../../agent/core/marathon-types.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, type RoutingInput } from '../../agent/core/routing-table.js';
import { pushBodyText } from '../../agent/dataplane/nginx/push-format.js';

function task(id: string, appId: string, port: number): MarathonTask {
  return { id, appId, host: '10.0.0.1', state: 'TASK_RUNNING', ports: [port], ipAddresses: [], startedAt: '2026-11-01T00:00:00.000Z', stagedAt: '2026-11-01T00:00:00.000Z', version: null, healthCheckResults: [] };
}

function app(id: string, labels: Record<string, string>, over: Partial<MarathonApp> = {}): MarathonApp {
  return { id, labels, instances: 1, networkMode: 'host', ports: [{ containerPort: null, hostPort: 0, name: 'x' }], healthCheckCount: 0, taskKillGracePeriodSeconds: null, version: null, tasks: [task(`${id.slice(1)}.1`, id, 31000)], ...over };
}

function input(apps: MarathonApp[]): RoutingInput {
  return { snapshot: { apps }, config: DEFAULT_ROUTING_CONFIG, hostAddresses: new Map(), healthMemory: new Map(), now: Date.parse('2026-11-01T01:00:00.000Z') };
}

describe('edgeroute.tcpPort label', () => {
  it('reads a port or "service", with or without vhosts', () => {
    expect(readRoutingLabels({ 'edgeroute.tcpPort': ' 10001 ' })).toMatchObject({ ok: true, routed: true, value: { vhosts: [], tcpPort: 10001 } });
    expect(readRoutingLabels({ 'edgeroute.tcpPort': 'service', 'edgeroute.vhosts': 'a.test' })).toMatchObject({ ok: true, routed: true, value: { vhosts: ['a.test'], tcpPort: 'service' } });
    expect(readRoutingLabels({ 'edgeroute.tcpPort': '1' })).toMatchObject({ ok: true, value: { tcpPort: 1 } });
    expect(readRoutingLabels({ 'edgeroute.tcpPort': '65535' })).toMatchObject({ ok: true, value: { tcpPort: 65535 } });
  });

  it('leaves tcpPort out when it is not set, and apps with neither label unrouted', () => {
    const read = readRoutingLabels({ 'edgeroute.vhosts': 'a.test' });
    expect(read.ok && read.routed && 'tcpPort' in read.value).toBe(false);
    expect(readRoutingLabels({ other: 'x' })).toEqual({ ok: true, routed: false });
  });

  it('refuses what is not a port', () => {
    for (const bad of ['0', '65536', '-1', '1.5', 'http', '', '10000-10001']) {
      const read = readRoutingLabels({ 'edgeroute.tcpPort': bad });
      expect(read.ok, bad).toBe(false);
      if (!read.ok) expect(read.message).toContain('edgeroute.tcpPort');
    }
  });
});

describe('edgeroute.tcpBind label', () => {
  it('reads one IPv4 or IPv6 address, IPv6 written as HAProxy prints a destination (compressed, lower case)', () => {
    expect(readRoutingLabels({ 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': ' 127.0.0.2 ' })).toMatchObject({ ok: true, value: { tcpPort: 10001, tcpBind: '127.0.0.2' } });
    expect(readRoutingLabels({ 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '2001:DB8:0:0::1' })).toMatchObject({ ok: true, value: { tcpBind: '2001:db8::1' } });
    expect(readRoutingLabels({ 'edgeroute.tcpPort': 'service', 'edgeroute.tcpBind': '[::1]' })).toMatchObject({ ok: true, value: { tcpPort: 'service', tcpBind: '::1' } });
  });

  it('reads every address (*, 0.0.0.0, ::, empty) as the default: no tcpBind', () => {
    for (const any of ['*', '0.0.0.0', '::', '', '[::]']) {
      const read = readRoutingLabels({ 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': any });
      expect(read.ok && read.routed && 'tcpBind' in read.value, any).toBe(false);
    }
  });

  it('refuses what is not an address, an IPv4-mapped or zoned IPv6 address, and an address without tcpPort, naming the label', () => {
    for (const bad of ['localhost', '10.0.0', '10.0.0.256', '127.0.0.1:80', '::ffff:10.0.0.1', 'fe80::1%eth0', '10.0.0.0/8']) {
      const read = readRoutingLabels({ 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': bad });
      expect(read.ok, bad).toBe(false);
      if (!read.ok) expect(read.message, bad).toMatch(/^edgeroute\.tcpBind=/);
    }
    const alone = readRoutingLabels({ 'edgeroute.vhosts': 'a.test', 'edgeroute.tcpBind': '127.0.0.2' });
    expect(alone).toEqual({ ok: false, message: 'edgeroute.tcpBind="127.0.0.2" needs edgeroute.tcpPort: it is the address of the app\'s TCP port' });
  });
});

describe('service ports from the app definition', () => {
  it('reads portDefinitions, ports, and portMappings servicePort', () => {
    const { snapshot } = parseAppsResponse({
      apps: [
        { id: '/defs', portDefinitions: [{ port: 10001 }, { port: 10002 }] },
        { id: '/legacy', ports: [10003] },
        { id: '/docker', container: { docker: { network: 'BRIDGE', portMappings: [{ containerPort: 80, hostPort: 0, servicePort: 10004 }] } } },
        { id: '/mesos', networks: [{ mode: 'container/bridge' }], container: { portMappings: [{ containerPort: 80, servicePort: 10005 }] } },
        { id: '/none', portDefinitions: [] },
      ],
    });
    expect(snapshot.apps.map((a) => a.servicePorts)).toEqual([[10001, 10002], [10003], [10004], [10005], undefined]);
  });
});

describe('routes with a TCP port', () => {
  it('carry tcpPort only when set, and route a TCP-only app', () => {
    const { table, problems } = computeRoutingTable(
      input([
        app('/web', { 'edgeroute.vhosts': 'web.test' }),
        app('/db', { 'edgeroute.tcpPort': '10001' }),
        app('/both', { 'edgeroute.vhosts': 'both.test', 'edgeroute.tcpPort': 'service', 'edgeroute.portIndex': '1' }, { servicePorts: [10010, 10011], ports: [{ containerPort: null, hostPort: 0, name: null }, { containerPort: null, hostPort: 0, name: null }], tasks: [{ ...task('both.1', '/both', 31000), ports: [31000, 31001] }] }),
      ]),
    );
    expect(problems).toEqual([]);
    expect('tcpPort' in (table.apps['/web'] ?? {})).toBe(false);
    expect(table.apps['/db']).toMatchObject({ vhosts: [], tcpPort: 10001 });
    expect(table.apps['/both']).toMatchObject({ vhosts: ['both.test'], tcpPort: 10011 });
  });

  it('skips an app with tcpPort=service but no service port, naming the app and the label', () => {
    const { table, problems } = computeRoutingTable(input([app('/db', { 'edgeroute.tcpPort': 'service' })]));
    expect(table.apps['/db']).toBeUndefined();
    expect(problems).toEqual([{ appId: '/db', message: expect.stringMatching(/^skipped: edgeroute.tcpPort=service .*no service port/) }]);
  });

  it('gives a port claimed by two apps to the first by id, with one warning naming both', () => {
    const { table, problems } = computeRoutingTable(input([app('/b', { 'edgeroute.tcpPort': '10001' }), app('/a', { 'edgeroute.tcpPort': '10001' })]));
    expect(table.apps['/a']?.tcpPort).toBe(10001);
    expect(table.apps['/b']).toBeUndefined();
    expect(problems).toEqual([{ appId: '/b', message: 'TCP port 10001 is already routed to app /a; not routed here' }]);
  });

  it('routes the same port on two addresses to two apps (and beside an app on every address); the same address and port twice goes to the first by id', () => {
    const { table, problems } = computeRoutingTable(
      input([
        app('/any', { 'edgeroute.tcpPort': '10001' }),
        app('/two', { 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '127.0.0.2' }),
        app('/three', { 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '127.0.0.3' }),
        app('/v6', { 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '::1' }),
        app('/two-again', { 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '127.0.0.2' }),
        app('/v6-again', { 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '0:0::1' }),
      ]),
    );
    expect(table.apps['/any']).toMatchObject({ tcpPort: 10001 });
    expect('tcpBind' in table.apps['/any']!).toBe(false);
    expect(table.apps['/two']).toMatchObject({ tcpPort: 10001, tcpBind: '127.0.0.2' });
    expect(table.apps['/three']).toMatchObject({ tcpPort: 10001, tcpBind: '127.0.0.3' });
    expect(table.apps['/v6']).toMatchObject({ tcpPort: 10001, tcpBind: '::1' });
    expect(table.apps['/two-again']).toBeUndefined();
    expect(table.apps['/v6-again']).toBeUndefined();
    expect(problems).toEqual([
      { appId: '/two-again', message: 'TCP port 127.0.0.2:10001 is already routed to app /two; not routed here' },
      { appId: '/v6-again', message: 'TCP port [::1]:10001 is already routed to app /v6; not routed here' },
    ]);
  });

  it('edgeroute.port.N.tcpBind binds port N alone; versions of one app with another address get one warning', () => {
    const two = { ports: [{ containerPort: null, hostPort: 0, name: null }, { containerPort: null, hostPort: 0, name: null }], tasks: [{ ...task('gw.1', '/gw', 31000), ports: [31000, 31001] }] };
    const { table, problems } = computeRoutingTable(
      input([
        app('/gw', { 'edgeroute.vhosts': 'gw.test', 'edgeroute.port.1.tcpPort': '10002', 'edgeroute.port.1.tcpBind': '127.0.0.2' }, two),
        app('/db-a', { 'edgeroute.app': 'db', 'edgeroute.version': 'a', 'edgeroute.tcpPort': '10003', 'edgeroute.tcpBind': '127.0.0.2' }),
        app('/db-b', { 'edgeroute.app': 'db', 'edgeroute.version': 'b', 'edgeroute.tcpPort': '10003', 'edgeroute.tcpBind': '127.0.0.3' }),
      ]),
    );
    expect('tcpBind' in table.apps['/gw']!).toBe(false);
    expect(table.apps['/gw:1']).toMatchObject({ vhosts: [], tcpPort: 10002, tcpBind: '127.0.0.2' });
    expect(table.apps['db']).toMatchObject({ tcpPort: 10003, tcpBind: '127.0.0.2' });
    expect(problems).toEqual([{ appId: '/db-b', message: 'its edgeroute.tcpBind differs from /db-a\'s, which app "db" uses for every version' }]);
  });

  it('a changed tcpPort changes the hash; the same app without it hashes as before', () => {
    const plain = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test' })])).table.apps['/web']!;
    const tcp = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10001' })])).table.apps['/web']!;
    const other = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10002' })])).table.apps['/web']!;
    const bound = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10001', 'edgeroute.tcpBind': '127.0.0.2' })])).table.apps['/web']!;
    expect(new Set([plain.hash, tcp.hash, other.hash, bound.hash]).size).toBe(4);
  });
});

describe('nginx pushes', () => {
  it('leave TCP-only apps out of a whole table and send them as removals in a change', () => {
    const { table } = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10002' }), app('/db', { 'edgeroute.tcpPort': '10001' })]));
    const whole = pushBodyText({ version: table.version, base: null, apps: table.apps }).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(whole.slice(1).map((l) => l.id)).toEqual(['/web']);
    const delta = pushBodyText({ version: 'v2', base: table.version, apps: { '/db': table.apps['/db']! } }).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(delta.slice(1)).toEqual([{ remove: '/db' }]);
  });
});
