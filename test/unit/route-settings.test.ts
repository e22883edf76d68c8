import { describe, expect, it } from 'vitest';
import { readRouteLabels } from '../../agent/core/route-settings.js';
import { readRoutingLabels } from '../../agent/core/labels.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, type RoutingInput } from '../../agent/core/routing-table.js';
import type { MarathonApp } from '../../agent/core/marathon-types.js';

function app(id: string, labels: Record<string, string>, port = 31000): MarathonApp {
  return {
    id,
    labels,
    instances: 1,
    networkMode: 'host',
    ports: [{ containerPort: null, hostPort: 0, name: 'http' }],
    healthCheckCount: 0,
    taskKillGracePeriodSeconds: null,
    version: null,
    tasks: [
      {
        id: `${id.slice(1)}.1`,
        appId: id,
        host: '10.0.0.1',
        state: 'TASK_RUNNING',
        ports: [port],
        ipAddresses: [],
        startedAt: '2026-11-01T00:00:00.000Z',
        stagedAt: '2026-11-01T00:00:00.000Z',
        version: null,
        healthCheckResults: [],
      },
    ],
  };
}

function input(apps: MarathonApp[]): RoutingInput {
  return { snapshot: { apps }, config: DEFAULT_ROUTING_CONFIG, hostAddresses: new Map(), healthMemory: new Map(), now: Date.parse('2026-11-01T01:00:00Z') };
}

describe('readRouteLabels', () => {
  it('defaults to "/" and no settings', () => {
    expect(readRouteLabels({})).toEqual({ ok: true, value: { paths: ['/'], settings: null } });
  });

  it('reads every per-route label', () => {
    const read = readRouteLabels({
      'edgeroute.path': '/api/, /auth ,/api',
      'edgeroute.stripPath': 'true',
      'edgeroute.redirectHttps': 'TRUE',
      'edgeroute.sticky': 'true',
      'edgeroute.balance': 'leastconn',
      'edgeroute.connectTimeout': '0.5',
      'edgeroute.readTimeout': '30',
      'edgeroute.sendTimeout': '12.25',
      'edgeroute.maxBodySize': '10m',
      'edgeroute.allowFrom': '10.0.0.0/8, 2001:db8::/32,192.0.2.7',
    });
    expect(read).toEqual({
      ok: true,
      value: {
        paths: ['/api', '/auth'],
        settings: {
          stripPath: true,
          redirectHttps: true,
          sticky: 'edgeroute_sticky',
          balance: 'leastconn',
          connectTimeout: 0.5,
          readTimeout: 30,
          sendTimeout: 12.25,
          maxBodySize: 10 * 1024 * 1024,
          allowFrom: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
        },
      },
    });
  });

  it('takes a cookie name for sticky, and leaves defaults out', () => {
    expect(readRouteLabels({ 'edgeroute.sticky': 'SRV-ID', 'edgeroute.balance': 'roundrobin', 'edgeroute.stripPath': 'false', 'edgeroute.maxBodySize': '0' })).toEqual({
      ok: true,
      value: { paths: ['/'], settings: { sticky: 'SRV-ID' } },
    });
  });

  it('reads redirectRoot (a path or an http(s) URL) and hsts', () => {
    expect(readRouteLabels({ 'edgeroute.redirectRoot': ' /my/content?from=root ', 'edgeroute.hsts': 'true' })).toEqual({
      ok: true,
      value: { paths: ['/'], settings: { redirectRoot: '/my/content?from=root', hsts: true } },
    });
    expect(readRouteLabels({ 'edgeroute.redirectRoot': 'https://docs.example.com/start', 'edgeroute.hsts': 'false' })).toEqual({
      ok: true,
      value: { paths: ['/'], settings: { redirectRoot: 'https://docs.example.com/start' } },
    });
  });

  it.each([
    ['edgeroute.redirectRoot', 'my/content', 'edgeroute.redirectRoot="my/content" is not a path'],
    ['edgeroute.redirectRoot', '/a b', 'is not a path'],
    ['edgeroute.redirectRoot', '/a\r\nSet-Cookie: x=1', 'is not a path'],
    ['edgeroute.redirectRoot', 'javascript:alert(1)', 'is not a path'],
    ['edgeroute.redirectRoot', '/', 'would redirect / to itself'],
    ['edgeroute.redirectRoot', `/${'a'.repeat(1024)}`, 'at most 1024'],
    ['edgeroute.hsts', 'yes', 'edgeroute.hsts="yes" is not true or false'],
    ['edgeroute.path', 'api', 'edgeroute.path has "api"'],
    ['edgeroute.path', '/a b', 'edgeroute.path has "/a b"'],
    ['edgeroute.path', '/a/../b', '"." or ".." segment'],
    ['edgeroute.path', '/a%2Fb', 'no %'],
    ['edgeroute.path', '/a//b', '"." or ".." segment'],
    ['edgeroute.path', ' , ', 'edgeroute.path is empty'],
    ['edgeroute.stripPath', 'yes', 'edgeroute.stripPath="yes" is not true or false'],
    ['edgeroute.balance', 'random', 'edgeroute.balance="random" is not roundrobin or leastconn'],
    ['edgeroute.readTimeout', '5s', 'edgeroute.readTimeout="5s" is not a number of seconds'],
    ['edgeroute.connectTimeout', '0', 'edgeroute.connectTimeout="0" is not a number of seconds'],
    ['edgeroute.maxBodySize', '10mb', 'edgeroute.maxBodySize="10mb" is not a size'],
    ['edgeroute.maxBodySize', '8388609g', 'up to 1024g'],
    ['edgeroute.allowFrom', '10.0.0.0/33', 'edgeroute.allowFrom has "10.0.0.0/33"'],
    ['edgeroute.sticky', 'a;b', 'edgeroute.sticky="a;b" is neither'],
  ])('refuses %s=%j naming the label', (label, value, message) => {
    const read = readRouteLabels({ [label]: value });
    expect(read.ok).toBe(false);
    expect(read.ok ? '' : read.message).toContain(message);
    // The app is skipped as a whole, like any other bad label.
    const routing = readRoutingLabels({ 'edgeroute.vhosts': 'a.example', [label]: value });
    expect(routing.ok).toBe(false);
  });
});

describe('routing by host and path', () => {
  it('lets several apps share one host by path, and pushes settings with the route', () => {
    const web = app('/web', { 'edgeroute.vhosts': 'shop.example' });
    const api = app('/api', { 'edgeroute.vhosts': 'shop.example', 'edgeroute.path': '/api', 'edgeroute.stripPath': 'true' }, 31001);
    const { table, problems } = computeRoutingTable(input([web, api]));
    expect(problems).toEqual([]);
    expect(table.apps['/web']).not.toHaveProperty('paths');
    expect(table.apps['/web']).not.toHaveProperty('settings');
    expect(table.apps['/api']).toMatchObject({ vhosts: ['shop.example'], paths: { 'shop.example': ['/api'] }, settings: { stripPath: true } });
  });

  it('gives a (host, path) claimed twice to the first app by id, with one warning naming both', () => {
    const a = app('/a', { 'edgeroute.vhosts': 'x.example,y.example', 'edgeroute.path': '/api' });
    const b = app('/b', { 'edgeroute.vhosts': 'x.example', 'edgeroute.path': '/api,/other' }, 31001);
    const { table, problems } = computeRoutingTable(input([b, a]));
    expect(table.apps['/a']?.paths).toEqual({ 'x.example': ['/api'], 'y.example': ['/api'] });
    expect(table.apps['/b']?.paths).toEqual({ 'x.example': ['/other'] });
    expect(problems).toEqual([{ appId: '/b', message: 'host x.example path /api is already routed to app /a; not routed here' }]);
  });

  it('gives versions of one logical app its first Marathon app\'s settings, and warns when another differs', () => {
    const stable = app('/shop-a', { 'edgeroute.vhosts': 's.example', 'edgeroute.app': 'shop', 'edgeroute.readTimeout': '5' });
    const grey = app('/shop-b', { 'edgeroute.vhosts': 's.example', 'edgeroute.app': 'shop', 'edgeroute.version': 'grey', 'edgeroute.readTimeout': '9' }, 31001);
    const { table, problems } = computeRoutingTable(input([stable, grey]));
    expect(table.apps.shop?.settings).toEqual({ readTimeout: 5 });
    expect(problems).toEqual([{ appId: '/shop-b', message: 'its route settings differ from /shop-a\'s, which app "shop" uses for every version' }]);
  });

  it('routes a host named __proto__ by path like any other', () => {
    const odd = app('/odd', { 'edgeroute.vhosts': '__proto__', 'edgeroute.path': '/x' });
    const { table, problems } = computeRoutingTable(input([odd]));
    expect(problems).toEqual([]);
    expect(JSON.parse(JSON.stringify(table.apps['/odd']?.paths))).toEqual(JSON.parse('{"__proto__": ["/x"]}'));
  });

  it('changes the route hash when a setting changes, and keeps it for apps without settings', () => {
    const plain = computeRoutingTable(input([app('/w', { 'edgeroute.vhosts': 'w.example' })])).table.apps['/w']?.hash;
    const slow = computeRoutingTable(input([app('/w', { 'edgeroute.vhosts': 'w.example', 'edgeroute.readTimeout': '90' })])).table.apps['/w']?.hash;
    const pathed = computeRoutingTable(input([app('/w', { 'edgeroute.vhosts': 'w.example', 'edgeroute.path': '/x' })])).table.apps['/w']?.hash;
    expect(new Set([plain, slow, pathed]).size).toBe(3);
  });
});
