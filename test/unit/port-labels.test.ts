import { describe, expect, it } from 'vitest';
import { readPortLabels } from '../../agent/core/port-labels.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';
import type { MarathonApp } from '../../agent/core/marathon-types.js';

function app(id: string, labels: Record<string, string>): MarathonApp {
  return {
    id,
    labels,
    instances: 1,
    networkMode: 'host',
    ports: [
      { containerPort: null, hostPort: 0, name: 'http' },
      { containerPort: null, hostPort: 0, name: 'admin' },
    ],
    servicePorts: [10001, 10002],
    healthCheckCount: 0,
    taskKillGracePeriodSeconds: null,
    version: null,
    tasks: [
      {
        id: `${id.slice(1)}.1`,
        appId: id,
        host: '10.0.0.1',
        state: 'TASK_RUNNING',
        ports: [31001, 31002],
        ipAddresses: [],
        startedAt: '2026-11-01T00:00:00.000Z',
        stagedAt: '2026-11-01T00:00:00.000Z',
        version: null,
        healthCheckResults: [],
      },
    ],
  };
}

const route = (apps: MarathonApp[], group: string | null = null) =>
  computeRoutingTable({ snapshot: { apps }, config: { ...DEFAULT_ROUTING_CONFIG, group }, hostAddresses: new Map(), healthMemory: new Map(), now: Date.parse('2026-11-02T00:00:00.000Z') });

describe('edgeroute.port.N: several ports per app', () => {
  it('reads port N from its own prefix, with the per-app labels and the group of the app', () => {
    const ports = readPortLabels(
      { 'edgeroute.vhosts': 'a.example.com', 'edgeroute.group': 'edge', 'edgeroute.app': 'shop', 'edgeroute.weight': '50', 'edgeroute.port.1.tcpPort': 'service', 'edgeroute.port.1.allowFrom': '10.0.0.0/8' },
      0,
    );
    expect(ports).toEqual([
      {
        index: 1,
        result: {
          ok: true,
          routed: true,
          value: expect.objectContaining({ portIndex: 1, vhosts: [], tcpPort: 'service', groups: ['edge'], app: 'shop', weight: 50, settings: { allowFrom: ['10.0.0.0/8'] } }),
        },
      },
    ]);
  });

  it.each([
    ['an app label under a port', { 'edgeroute.port.1.weight': '5' }, 'edgeroute.port.1.weight: edgeroute.weight is the app\'s, not a port\'s'],
    ['an unknown label', { 'edgeroute.port.1.colour': 'blue' }, 'not a per-port label'],
    ['the app\'s own port', { 'edgeroute.port.0.vhosts': 'b.example.com' }, "names the app's own port (edgeroute.portIndex=0)"],
    ['a bad value', { 'edgeroute.port.1.vhosts': 'a..b' }, 'edgeroute.port.1.vhosts has an invalid host name "a..b"'],
    ['a bad index', { 'edgeroute.port.x.vhosts': 'b.example.com' }, 'is not edgeroute.port.N.<label>'],
  ])('refuses %s, naming it', (_title, labels, message) => {
    const [port] = readPortLabels(labels, 0);
    expect(port?.result.ok).toBe(false);
    if (port && !port.result.ok) expect(port.result.message).toContain(message);
  });

  it('routes each port as its own route <app>:N, to the tasks at that port index', () => {
    const gateway = app('/gateway', { 'edgeroute.vhosts': 'gw.example.com', 'edgeroute.port.1.tcpPort': 'service' });
    const { table, problems } = route([gateway]);
    expect(problems).toEqual([]);
    expect(Object.keys(table.apps)).toEqual(['/gateway', '/gateway:1']);
    expect(table.apps['/gateway']?.versions.stable?.backends.map((b) => b.port)).toEqual([31001]);
    expect(table.apps['/gateway:1']).toMatchObject({ vhosts: [], tcpPort: 10002 });
    expect(table.apps['/gateway:1']?.versions.stable?.backends.map((b) => b.port)).toEqual([31002]);
  });

  it('routes a port only where its group is selected, and the other ports of an app with a bad one', () => {
    const split = app('/split', { 'edgeroute.vhosts': 'split.example.com', 'edgeroute.group': 'external', 'edgeroute.port.1.vhosts': 'admin.example.com', 'edgeroute.port.1.group': 'internal' });
    expect(Object.keys(route([split], 'external').table.apps)).toEqual(['/split']);
    expect(Object.keys(route([split], 'internal').table.apps)).toEqual(['/split:1']);
    const bad = app('/bad', { 'edgeroute.vhosts': 'bad.example.com', 'edgeroute.port.1.tcpPort': 'seventy' });
    const { table, problems } = route([bad]);
    expect(Object.keys(table.apps)).toEqual(['/bad']);
    expect(problems).toEqual([{ appId: '/bad', message: 'port index 1 skipped: edgeroute.port.1.tcpPort="seventy" is not a port (1 to 65535) or "service"' }]);
  });
});
