// Side by side: the fixture's apps with their marathon-lb labels (read by an
// agent with --marathon-lb-labels) and the same apps relabelled by hand with
// edgeroute.* labels give the same routing table, hashes included, for
// every group selection.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAppsResponse } from '../../agent/core/marathon-apps.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';
import type { MarathonSnapshot } from '../../agent/core/marathon-types.js';

const { snapshot: marathonLb } = parseAppsResponse(JSON.parse(readFileSync('test/fixtures/marathon/marathon-lb/apps.json', 'utf8')));

/** What an operator would write instead, app by app (apps marathon-lb would not route get none). */
const EDGEROUTE_LABELS: Record<string, Record<string, string>> = {
  '/shop/web': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'shop.example.com,www.shop.example.com', 'edgeroute.redirectHttps': 'true', 'edgeroute.sticky': 'true' },
  '/shop/api': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.path': '/api', 'edgeroute.stripPath': 'true', 'edgeroute.balance': 'leastconn' },
  '/shop/admin': { 'edgeroute.group': 'internal,external', 'edgeroute.vhosts': 'admin.shop.example.com', 'edgeroute.allowFrom': '10.0.0.0/8,192.168.1.7' },
  '/data/redis': { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': 'service' },
  '/data/postgres': { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': '15432' },
  '/data/mqtt': { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': 'service', 'edgeroute.tcpBind': '10.0.0.42' },
  '/legacy/reports': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'reports.example.com', 'edgeroute.redirectRoot': '/latest', 'edgeroute.hsts': 'true' },
  '/tools/grafana': {
    'edgeroute.group': 'internal',
    'edgeroute.vhosts': 'grafana.internal.example.com',
    'edgeroute.basicAuth': 'ops:admin:$6$rounds=5000$Q9pCzW4e$PN28PbeEoE8/8CvV3kHGYyvlL1EIFEEkiPxnt9pAzovAcMyGSgNNVEURGw32V6WrFnbc.c1W0Bx8JD8ecpdz4/',
  },
  '/batch/worker': { 'edgeroute.tcpPort': 'service' },
  '/shop/search': {},
  '/shop/gateway': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'gateway.example.com', 'edgeroute.port.1.group': 'internal', 'edgeroute.port.1.tcpPort': 'service' },
};

const relabelled: MarathonSnapshot = {
  apps: marathonLb.apps.map((app) => {
    const labels = EDGEROUTE_LABELS[app.id];
    return labels === undefined ? app : { ...app, labels };
  }),
};

function table(snapshot: MarathonSnapshot, group: string | null, marathonLbLabels: boolean) {
  return computeRoutingTable({
    snapshot,
    config: { ...DEFAULT_ROUTING_CONFIG, group, marathonLbLabels },
    hostAddresses: new Map(),
    healthMemory: new Map(),
    now: Date.parse('2026-11-29T12:00:00.000Z'),
  });
}

describe('marathon-lb labels side by side with edgeroute labels', () => {
  it.each(['external', 'internal', 'external,internal', '*'])('give the same routing table for --group %s', (group) => {
    const fromMarathonLb = table(marathonLb, group, true).table;
    const fromEdgeroute = table(relabelled, group, false).table;
    expect(Object.keys(fromMarathonLb.apps).length).toBeGreaterThan(0);
    expect(fromMarathonLb.apps).toEqual(fromEdgeroute.apps);
    expect(fromMarathonLb.version).toBe(fromEdgeroute.version);
  });

  it('routes what marathon-lb routes for --group external, and nothing of internal', () => {
    const { apps } = table(marathonLb, 'external', true).table;
    expect(Object.keys(apps).sort()).toEqual(['/edge/checkout', '/legacy/reports', '/shop/admin', '/shop/api', '/shop/gateway', '/shop/web']);
    expect(apps['/shop/web']).toMatchObject({ vhosts: ['shop.example.com', 'www.shop.example.com'], settings: { redirectHttps: true, sticky: 'edgeroute_sticky' } });
    expect(apps['/shop/api']).toMatchObject({ paths: { 'shop.example.com': ['/api'] }, settings: { stripPath: true, balance: 'leastconn' } });
    expect(apps['/shop/api']?.versions.stable?.backends.map((b) => `${b.address}:${b.port}`)).toEqual(['10.0.1.11:31201', '10.0.1.13:31202', '10.0.1.14:31203']);
    // The app with edgeroute.* labels is read by them, not by its marathon-lb ones.
    expect(apps['/edge/checkout']?.vhosts).toEqual(['checkout.example.com']);
  });

  it('routes the TCP service ports for --group internal', () => {
    const { apps } = table(marathonLb, 'internal', true).table;
    expect(Object.keys(apps).sort()).toEqual(['/data/mqtt', '/data/postgres', '/data/redis', '/shop/admin', '/shop/gateway:1', '/tools/grafana']);
    expect(apps['/data/redis']).toMatchObject({ vhosts: [], tcpPort: 10004 });
    // Port index 1 of the gateway, internal's (HAPROXY_1_GROUP): a route of its own.
    expect(apps['/shop/gateway:1']).toMatchObject({ vhosts: [], tcpPort: 10011, versions: { stable: { marathonAppId: '/shop/gateway' } } });
    expect(apps['/shop/gateway:1']?.versions.stable?.backends.map((b) => b.port)).toEqual([32002]);
    expect(apps['/data/postgres']).toMatchObject({ vhosts: [], tcpPort: 15432 });
    // HAPROXY_0_AUTH: realm ops, user admin, the hash as labelled.
    expect(apps['/tools/grafana']?.settings?.basicAuth).toEqual({ realm: 'ops', users: { admin: expect.stringMatching(/^\$6\$rounds=5000\$Q9pCzW4e\$/) } });
    // HAPROXY_0_BIND_ADDR: the service port on that address only.
    expect(apps['/data/mqtt']).toMatchObject({ vhosts: [], tcpPort: 10013, tcpBind: '10.0.0.42' });
  });

  it('without --marathon-lb-labels, reads only edgeroute.* labels', () => {
    expect(Object.keys(table(marathonLb, '*', false).table.apps)).toEqual(['/edge/checkout']);
  });

  it('warns once per app, naming the labels, only for the apps of its groups', () => {
    const problems = table(marathonLb, 'external', true).problems.map((p) => `${p.appId}: ${p.message}`);
    expect(problems).toEqual([
      expect.stringMatching(/^\/legacy\/reports: marathon-lb label HAPROXY_0_PORT="abc" is not a port/),
      expect.stringMatching(/^\/legacy\/reports: marathon-lb labels not honoured: HAPROXY_0_BACKEND_HEAD \([^;]*\)$/),
    ]);
  });
});
