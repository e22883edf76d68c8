// marathon-lb's labels, read as they are (edgeroute agent --marathon-lb-labels),
// routed through real nginx and real HAProxy (one test body, both rigs): the
// HTTP apps of the fixture listing (test/fixtures/marathon/marathon-lb) are
// deployed with their labels and health checks as they are, and each is
// checked request by request against what marathon-lb does with them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { RIGS, startRigNode, type RigNode } from '../helpers/data-plane-rig.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { EchoServers, exchange, freePortRange } from '../helpers/tcp-echo.js';
import { waitForBackends, waitForStatus } from '../helpers/traffic.js';
import { waitFor } from '../../agent/sandbox/wait.js';

interface FixtureApp {
  id: string;
  instances: number;
  labels: Record<string, string>;
  healthChecks: Array<Record<string, unknown>>;
}

const FIXTURE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'marathon-lb', 'apps.json'), 'utf8')) as { apps: FixtureApp[] };
/** The fixture's apps served by Host (its TCP apps need a node with a TCP port range). */
const HTTP_APPS = ['/shop/web', '/shop/api', '/shop/admin', '/legacy/reports', '/tools/grafana', '/shop/search', '/shop/gateway', '/edge/checkout'];

describe.each(RIGS)('marathon-lb labels routed as marathon-lb routes them ($kind)', (rig) => {
  let marathon: MarathonSim;
  let node: RigNode;
  let routedPids: Awaited<ReturnType<RigNode['pids']>>;
  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
  const get = (host: string, path: string, headers: Record<string, string> = {}) => httpGet(`${node.publicUrl}${path}`, { host, headers });
  /** The task that answered /headers (through a path strip, it sees /headers), or null. */
  const headersFrom = async (host: string, path: string) => {
    const reply = await get(host, path);
    return reply.status === 200 && reply.body.startsWith('{') ? (JSON.parse(reply.body) as { taskId: string }).taskId : null;
  };

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    for (const app of FIXTURE.apps.filter((a) => HTTP_APPS.includes(a.id))) {
      await marathon.deploy({ id: app.id, instances: Math.min(app.instances, 2), labels: app.labels, healthChecks: app.healthChecks });
    }
    node = await startRigNode(rig, marathon.url, { marathonLbLabels: true, group: 'external,internal' });
    await waitForBackends(`${node.publicUrl}/r`, 'reports.example.com', taskIds('/legacy/reports'));
    await waitForBackends(node.publicUrl, 'gateway.example.com', taskIds('/shop/gateway'));
    routedPids = await node.pids();
  });

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  it('HAPROXY_0_VHOST: every host of the comma list, in any case; other hosts 404', async () => {
    expect(taskIds('/legacy/reports')).toContain((await get('reports.example.com', '/r')).body);
    expect(taskIds('/shop/gateway')).toContain((await get('Gateway.Example.COM', '/anything')).body);
    expect((await get('nobody.example.com', '/')).status).toBe(404);
  });

  it('HAPROXY_0_REDIRECT_TO_HTTPS: plain HTTP to the vhost gets a redirect to https, path and query kept', async () => {
    for (const host of ['shop.example.com', 'www.shop.example.com']) {
      const reply = await get(host, '/cart?item=42');
      expect(reply.status).toBe(301);
      expect(reply.headers.location).toBe(`https://${host}/cart?item=42`);
    }
  });

  it('HAPROXY_0_PATH with HTTP_BACKEND_PROXYPASS_PATH: /api goes to the api app, stripped, with its own settings (no redirect)', async () => {
    await waitForStatus(node.publicUrl, 'shop.example.com', 301);
    expect(taskIds('/shop/api')).toContain(await headersFrom('shop.example.com', '/api/headers'));
    // A prefix at a / boundary: /apix is the site's (which redirects); /api on the other vhost too.
    expect((await get('shop.example.com', '/apix/headers')).status).toBe(301);
    expect((await get('www.shop.example.com', '/api/headers')).status).toBe(301);
    // leastconn across the api app's tasks: every task gets requests when they are quick.
    const seen = new Set<string | null>();
    for (let i = 0; i < 12; i++) seen.add(await headersFrom('shop.example.com', '/api/headers'));
    expect([...seen].sort()).toEqual(taskIds('/shop/api').sort());
  });

  it('HAPROXY_0_HTTP_BACKEND_REDIR: exactly / on the vhost gets 301 to the path; HAPROXY_0_USE_HSTS: that app\'s responses carry HSTS', async () => {
    for (const path of ['/', '/?from=bookmark']) {
      const reply = await get('reports.example.com', path);
      expect(reply.status).toBe(301);
      expect(reply.headers.location).toBe('/latest');
    }
    const other = await get('reports.example.com', '/latest');
    expect(taskIds('/legacy/reports')).toContain(other.body);
    expect(other.headers['strict-transport-security']).toBe('max-age=15768000');
    const gateway = await get('gateway.example.com', '/');
    expect(taskIds('/shop/gateway')).toContain(gateway.body);
    expect(gateway.headers['strict-transport-security']).toBeUndefined();
  });

  it('HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: a client outside the list gets 403', async () => {
    await waitForStatus(node.publicUrl, 'admin.shop.example.com', 403);
  });

  it('does not route what marathon-lb would not (HAPROXY_0_ENABLED=false)', async () => {
    expect((await get('search.example.com', '/')).status).toBe(404);
  });

  it('HAPROXY_0_AUTH: 401 with the realm without the password or with a wrong one, the app with it; no reload', async () => {
    // The fixture's hash: `ops:admin:` and crypt("grafana-ops-2026", "$6$rounds=5000$Q9pCzW4e").
    const basic = (credentials: string) => ({ authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });
    await waitForStatus(node.publicUrl, 'grafana.internal.example.com', 401);
    for (const headers of [{}, basic('admin:grafana-ops-2025'), basic('ops:grafana-ops-2026')]) {
      const reply = await get('grafana.internal.example.com', '/', headers);
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Basic realm="ops"');
    }
    for (let i = 0; i < 3; i++) expect(taskIds('/tools/grafana')).toContain((await get('grafana.internal.example.com', '/', basic('admin:grafana-ops-2026'))).body);
    expect(await node.pids()).toEqual(routedPids);
  });

  it('reads an app with edgeroute.* labels by those alone', async () => {
    await waitForBackends(node.publicUrl, 'checkout.example.com', taskIds('/edge/checkout'));
    expect((await get('old-checkout.example.com', '/')).status).toBe(404);
  });

  it('routes the rest of an app with a bad label, and warns once per app naming app and labels', async () => {
    const warnings = node.logs
      .lines()
      .filter((l) => l.msg === 'marathon app not routed as labelled')
      .map((l) => `${String(l.app)}: ${String(l.problem)}`);
    const about = (app: string) => warnings.filter((w) => w.startsWith(`${app}: `));
    expect(about('/legacy/reports')).toEqual([
      expect.stringMatching(/^\/legacy\/reports: marathon-lb label HAPROXY_0_PORT="abc" is not a port/),
      expect.stringMatching(/^\/legacy\/reports: marathon-lb labels not honoured: HAPROXY_0_BACKEND_HEAD \([^;]*\)$/),
    ]);
    expect(about('/tools/grafana')).toEqual([]);
    expect(JSON.stringify(node.logs.lines())).not.toContain('$6$');
    expect(about('/shop/web')).toEqual([]);
  });
});

// marathon-lb's TCP services: an app without a vhost is served in TCP on its
// service port (or HAPROXY_0_PORT) by every HAProxy node of its group.
describe('marathon-lb TCP services on an HAProxy node', () => {
  const RANGE = 4;
  let marathon: MarathonSim;
  let node: HaproxyRoutingNode;
  let base: number;
  const echoes = new EchoServers();
  const fixture = (id: string) => FIXTURE.apps.find((a) => a.id === id) as FixtureApp;

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    base = await freePortRange(RANGE);
    node = await startHaproxyRoutingNode(marathon.url, { marathonLbLabels: true, group: 'internal' }, { backendPool: 2, tcpPorts: `${base}-${base + RANGE - 1}`, tcpBackendPool: 4 });
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
    await echoes.stopAll();
  });

  async function reaches(port: number, names: readonly string[]): Promise<void> {
    await waitFor(`port ${port} reaching ${names.join(', ')}`, async () => {
      const got = new Set<string>();
      for (let i = 0; i < names.length * 8; i++) got.add(await exchange(port).catch(() => '?'));
      return [...got].sort().join(',') === [...names].sort().join(',') ? true : undefined;
    }, 15_000);
  }

  it('routes the service port of a TCP app (no vhost), and HAPROXY_0_PORT, request by request; an allow-list keeps its port closed', async () => {
    const redis = fixture('/data/redis');
    const redisPorts = [await echoes.start('redis-0'), await echoes.start('redis-1')];
    // The fixture's labels as they are; the service port is the node's range's first.
    await marathon.deploy({ id: redis.id, instances: 2, backendPorts: redisPorts, labels: redis.labels, healthChecks: redis.healthChecks, extra: { portDefinitions: [{ port: base, protocol: 'tcp', name: 'redis', labels: {} }] } });
    const postgres = fixture('/data/postgres');
    await marathon.deploy({ id: postgres.id, instances: 1, backendPorts: [await echoes.start('pg-0')], labels: { ...postgres.labels, HAPROXY_0_PORT: String(base + 1) } });
    await marathon.deploy({
      id: '/data/guarded',
      instances: 1,
      backendPorts: [await echoes.start('guarded-0')],
      labels: { HAPROXY_GROUP: 'internal', HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/8' },
      extra: { portDefinitions: [{ port: base + 2, protocol: 'tcp', name: 'x', labels: {} }] },
    });
    await reaches(base, ['redis-0', 'redis-1']);
    await reaches(base + 1, ['pg-0']);
    for (let i = 0; i < 3; i++) await expect(exchange(base + 2)).rejects.toThrow();
    expect(node.logs.has((l) => l.app === '/data/guarded' && String(l.problem).includes('HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL'))).toBe(true);
    expect(node.logs.has((l) => l.app === '/data/redis' && String(l.problem).includes('HAPROXY_0_BALANCE'))).toBe(true);
  }, 60_000);
});

// An nginx node still on the nginx.conf of the release before the plugin set
// these headers itself: it declares $edgeroute_hsts and $edgeroute_sticky_cookie
// and sends them with add_header ... always, and computes the backend's Host
// with a regex map. The plugin leaves those variables empty, so the header
// is sent once, by the plugin, and the map's Host still reaches the backend.
describe('HAPROXY_0_USE_HSTS on an nginx node whose nginx.conf is of the previous release', () => {
  let marathon: MarathonSim;
  let node: RoutingNode;
  const reports = FIXTURE.apps.find((a) => a.id === '/legacy/reports') as FixtureApp;
  const taskIds = () => marathon.tasks(reports.id).map((t) => t.id);
  const previousRelease = (conf: string) => {
    const set = '        set $edgeroute_upstream_host $http_host;\n';
    const proxyHost = '            proxy_set_header Host $edgeroute_upstream_host;\n';
    const connectionMap = '    map $http_upgrade $edgeroute_connection {\n';
    if (!conf.includes(set) || !conf.includes(proxyHost) || !conf.includes(connectionMap)) throw new Error('the template changed: update this test');
    const hostMap = ['    map "$host $http_host" $edgeroute_upstream_host {', '        "~*^(\\S+) \\1(:\\d+)?$"  $http_host;', '        default                 $host;', '    }', ''].join('\n');
    return conf
      .replace(set, '        set $edgeroute_sticky_cookie "";\n        set $edgeroute_hsts "";\n')
      .replace(proxyHost, `${proxyHost}            add_header Set-Cookie $edgeroute_sticky_cookie always;\n            add_header Strict-Transport-Security $edgeroute_hsts always;\n`)
      .replace(connectionMap, hostMap + connectionMap);
  };

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    await marathon.deploy({ id: reports.id, instances: 2, labels: reports.labels, healthChecks: reports.healthChecks });
    node = await startRoutingNode(marathon.url, { marathonLbLabels: true, group: 'external' }, { workerProcesses: 2, editConf: previousRelease });
    await waitForBackends(`${node.nginx.publicUrl}/latest`, 'reports.example.com', taskIds());
  });

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  it('answers 200 from the app with Strict-Transport-Security once, and no Lua error', async () => {
    const workers = node.nginx.process.workerPids().sort();
    expect(workers).toHaveLength(2);
    for (let i = 0; i < 4; i++) {
      const replies = await Promise.all(Array.from({ length: 16 }, () => httpGet(`${node.nginx.publicUrl}/latest`, { host: 'reports.example.com' })));
      for (const reply of replies) {
        expect(reply.status).toBe(200);
        expect(taskIds()).toContain(reply.body);
        // Two headers would read "max-age=15768000, max-age=15768000".
        expect(reply.headers['strict-transport-security']).toBe('max-age=15768000');
      }
    }
    // Still redirected at /, as before edgeroute.hsts.
    expect((await httpGet(`${node.nginx.publicUrl}/`, { host: 'reports.example.com' })).status).toBe(301);
    expect(node.nginx.process.errorLog()).not.toMatch(/runtime error|failed to run/);
    expect(node.nginx.process.workerPids().sort()).toEqual(workers);
  }, 60_000);
});
