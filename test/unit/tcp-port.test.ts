// edgeroute.tcpPort: the label, service ports from the app definition, the
// route's optional tcpPort, conflicts between apps, and nginx pushes that
// leave TCP-only apps out.
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

  it('a changed tcpPort changes the hash; the same app without it hashes as before', () => {
    const plain = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test' })])).table.apps['/web']!;
    const tcp = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10001' })])).table.apps['/web']!;
    const other = computeRoutingTable(input([app('/web', { 'edgeroute.vhosts': 'web.test', 'edgeroute.tcpPort': '10002' })])).table.apps['/web']!;
    expect(new Set([plain.hash, tcp.hash, other.hash]).size).toBe(3);
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
