import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAppsResponse } from '../../agent/core/marathon-apps.js';
import { marathonLbProblems, readMarathonLbLabels, readsMarathonLbLabels, type LabelReading } from '../../agent/core/marathon-lb-labels.js';
import type { HealthCheckSpec, MarathonApp } from '../../agent/core/marathon-types.js';

function app(labels: Record<string, string>, over: Partial<MarathonApp> = {}): MarathonApp {
  return {
    id: '/app',
    labels,
    instances: 1,
    networkMode: 'host',
    ports: [{ containerPort: null, hostPort: 0, name: null }],
    servicePorts: [10001],
    healthCheckCount: 0,
    taskKillGracePeriodSeconds: null,
    version: null,
    tasks: [],
    ...over,
  };
}

const read = (labels: Record<string, string>, over: Partial<MarathonApp> = {}, selector: string | null = '*') => readMarathonLbLabels(app(labels, over), selector);
const reading = (readings: readonly LabelReading[], label: string) => readings.find((r) => r.label === label);
const check = (protocol: string, portIndex: number | null = 0, port: number | null = null): HealthCheckSpec => ({ protocol, portIndex, port });

describe('readMarathonLbLabels', () => {
  it('says a vhost app in edgeroute labels: lower-cased comma list, path prefixes, strip, redirect, sticky, leastconn, allow-list', () => {
    const result = read({
      HAPROXY_GROUP: 'external',
      HAPROXY_0_VHOST: 'Shop.Example.com, www.shop.example.com',
      HAPROXY_0_PATH: '/api /v2',
      HAPROXY_0_REDIRECT_TO_HTTPS: 'yes',
      HAPROXY_0_STICKY: 'T',
      HAPROXY_0_BALANCE: 'leastconn',
      HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.1.40.0/24 10.1.55.43',
    });
    expect(result.mode).toBe('http');
    expect(result.labels).toEqual({
      'edgeroute.group': 'external',
      'edgeroute.vhosts': 'shop.example.com,www.shop.example.com',
      'edgeroute.path': '/api,/v2',
      'edgeroute.redirectHttps': 'true',
      'edgeroute.sticky': 'true',
      'edgeroute.balance': 'leastconn',
      'edgeroute.allowFrom': '10.1.40.0/24,10.1.55.43',
    });
    expect(marathonLbProblems('/app', result.readings)).toEqual([]);
  });

  it('strips the path when HTTP_BACKEND_PROXYPASS_PATH is the path it serves, and says what to do when it is not', () => {
    expect(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_PATH: '/api', HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH: '/api/' }).labels).toMatchObject({ 'edgeroute.stripPath': 'true' });
    const other = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_PATH: '/api /v2', HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH: '/api' });
    expect(other.labels).not.toHaveProperty('edgeroute.stripPath');
    expect(reading(other.readings, 'HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH')).toMatchObject({ fate: 'unsupported', note: expect.stringContaining('set HAPROXY_0_PATH to /api (alone)') });
  });

  it('routes an app without a vhost as TCP on its service port, or HAPROXY_0_PORT, as marathon-lb decides', () => {
    expect(read({ HAPROXY_GROUP: 'internal' })).toMatchObject({ mode: 'tcp', labels: { 'edgeroute.group': 'internal', 'edgeroute.tcpPort': 'service' } });
    expect(read({ HAPROXY_0_PORT: '15432' }).labels).toEqual({ 'edgeroute.tcpPort': '15432' });
    // No service port: marathon-lb skips the port, and so does edgeroute.
    expect(read({ HAPROXY_GROUP: 'internal' }, { servicePorts: [null] }).labels).toEqual({ 'edgeroute.group': 'internal' });
  });

  it('says HAPROXY_0_BIND_ADDR as edgeroute.tcpBind on a TCP service port (port N too); every address is the default; a bad one leaves the port closed', () => {
    const v4 = read({ HAPROXY_0_MODE: 'tcp', HAPROXY_0_BIND_ADDR: '127.0.0.2' });
    expect(v4.labels).toEqual({ 'edgeroute.tcpPort': 'service', 'edgeroute.tcpBind': '127.0.0.2' });
    expect(reading(v4.readings, 'HAPROXY_0_BIND_ADDR')).toEqual({ label: 'HAPROXY_0_BIND_ADDR', value: '127.0.0.2', fate: 'mapped', note: 'edgeroute.tcpBind=127.0.0.2 (HAProxy nodes listen for the port on that address only)' });
    expect(read({ HAPROXY_0_PORT: '15432', HAPROXY_0_BIND_ADDR: '::1' }).labels).toEqual({ 'edgeroute.tcpPort': '15432', 'edgeroute.tcpBind': '::1' });
    const portN = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_1_BIND_ADDR: '10.0.0.42' }, { servicePorts: [10001, 10002] });
    expect(portN.labels).toEqual({ 'edgeroute.vhosts': 'a.example.com', 'edgeroute.port.1.tcpPort': 'service', 'edgeroute.port.1.tcpBind': '10.0.0.42' });
    expect(reading(portN.readings, 'HAPROXY_1_BIND_ADDR')).toMatchObject({ fate: 'mapped', note: expect.stringMatching(/^edgeroute\.port\.1\.tcpBind=10\.0\.0\.42 /) });
    const any = read({ HAPROXY_0_BIND_ADDR: '*' });
    expect(any.labels).toEqual({ 'edgeroute.tcpPort': 'service' });
    expect(reading(any.readings, 'HAPROXY_0_BIND_ADDR')).toMatchObject({ fate: 'same' });
    // An address marathon-lb's HAProxy could not bind: the port stays closed rather than open on every address.
    const bad = read({ HAPROXY_GROUP: 'internal', HAPROXY_0_BIND_ADDR: 'internal-nic' });
    expect(bad.labels).toEqual({ 'edgeroute.group': 'internal' });
    expect(reading(bad.readings, 'HAPROXY_0_BIND_ADDR')).toMatchObject({ fate: 'bad', note: expect.stringContaining('not routed rather than opened on every address') });
    expect(marathonLbProblems('/app', bad.readings)).toEqual([{ appId: '/app', message: expect.stringMatching(/^marathon-lb label HAPROXY_0_BIND_ADDR="internal-nic" is not an IPv4 or IPv6 address/) }]);
    // By Host, the service-port listener it binds is not opened.
    expect(reading(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_BIND_ADDR: '127.0.0.2' }).readings, 'HAPROXY_0_BIND_ADDR')).toMatchObject({ fate: 'differs' });
  });

  it('takes HTTP from an HTTP health check or HAPROXY_0_MODE; HTTP on a service port is passed through as TCP, with its HTTP labels reported', () => {
    const byCheck = read({ HAPROXY_0_STICKY: 'true' }, { healthCheckCount: 1, healthChecks: [check('HTTP')] });
    expect(byCheck.mode).toBe('http');
    expect(byCheck.labels).toEqual({ 'edgeroute.tcpPort': 'service' });
    expect(reading(byCheck.readings, 'service port')).toMatchObject({ fate: 'differs' });
    expect(reading(byCheck.readings, 'HAPROXY_0_STICKY')?.fate).toBe('unsupported');
    // The label overrides the check; a TCP check leaves TCP.
    expect(read({ HAPROXY_0_MODE: 'TCP' }, { healthChecks: [check('HTTP')] }).mode).toBe('tcp');
    expect(read({}, { healthChecks: [check('TCP')] }).mode).toBe('tcp');
    // A check at another port index is not port 0's, unless it names a port.
    expect(read({}, { healthChecks: [check('HTTP', 1)] }).mode).toBe('tcp');
    expect(read({}, { healthChecks: [check('HTTP', null, 8080)] }).mode).toBe('http');
    expect(read({ HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX: '1' }, { healthChecks: [check('MESOS_HTTP', 1)] }).mode).toBe('http');
  });

  it('does not route a disabled port, nor one behind basic auth it cannot check or an allow-list it cannot apply (fails closed)', () => {
    expect(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_ENABLED: 'false' }).labels).toBeNull();
    expect(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_ENABLED: 'true' }).labels).toMatchObject({ 'edgeroute.vhosts': 'a.example.com' });
    // A hash edgeroute cannot check (not $6$, $5$ or $1$; here a cut one) and a value without three fields.
    for (const value of ['realm:user:$6$salt$hash', 'user:hash', 'realm::$1$abcdEFGH$YwB5GTTIiGk/xvQF0MFtt.']) {
      const auth = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_AUTH: value });
      expect(auth.labels).toBeNull();
      expect(reading(auth.readings, 'HAPROXY_0_AUTH')).toMatchObject({ fate: 'bad', note: expect.stringContaining('not routed rather than served without a password') });
      expect(JSON.stringify(auth)).not.toMatch(/\$6\$salt|YwB5GTT/);
    }
    // TCP with an ACL: edgeroute cannot filter TCP by client, so no TCP port rather than an open one.
    const tcp = read({ HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/8' });
    expect(tcp.labels).toEqual({});
    expect(reading(tcp.readings, 'HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL')?.fate).toBe('unsupported');
    // An allow-list that is partly bad keeps its good entries: narrower, never wider.
    const partly = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/8 lan' });
    expect(partly.labels).toMatchObject({ 'edgeroute.allowFrom': '10.0.0.0/8' });
    expect(reading(partly.readings, 'HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL')?.fate).toBe('bad');
  });

  it('maps HAPROXY_0_AUTH to edgeroute.basicAuth on a vhost (port N too), never showing the hash; ignores it without a vhost, as marathon-lb', () => {
    const hash = '$6$Q9pCzW4eRt7Lm2Xa$72Fqd6/pTYlKEcPSPb6GAOVwsW7.IpXc7jfk0qJ9prs1Rdr2VYgSucmQJJMhAQF1gJE0OKNWWFL91.mXdEhDM.';
    const auth = read({ HAPROXY_0_VHOST: 'grafana.example.com', HAPROXY_0_AUTH: `ops:admin:${hash}` });
    expect(auth.labels).toEqual({ 'edgeroute.vhosts': 'grafana.example.com', 'edgeroute.basicAuth': `ops:admin:${hash}` });
    expect(reading(auth.readings, 'HAPROXY_0_AUTH')).toEqual({ label: 'HAPROXY_0_AUTH', value: 'ops:admin:(hidden)', fate: 'mapped', note: 'edgeroute.basicAuth=ops:admin:(hidden)' });
    expect(JSON.stringify(auth.readings)).not.toContain('Q9pCzW4e');
    // In TCP mode too: marathon-lb asks for the password on the vhost's frontends whatever the mode.
    expect(read({ HAPROXY_0_VHOST: 'g.example.com', HAPROXY_0_MODE: 'tcp', HAPROXY_0_AUTH: `ops:admin:${hash}` }).labels).toMatchObject({ 'edgeroute.basicAuth': `ops:admin:${hash}` });
    // Port 1 has its own; a bad one there closes port 1 only.
    const ports = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_1_VHOST: 'b.example.com', HAPROXY_1_AUTH: `ops:admin:${hash}` }, { servicePorts: [10001, 10002] });
    expect(ports.labels).toMatchObject({ 'edgeroute.vhosts': 'a.example.com', 'edgeroute.port.1.vhosts': 'b.example.com', 'edgeroute.port.1.basicAuth': `ops:admin:${hash}` });
    expect(reading(ports.readings, 'HAPROXY_1_AUTH')).toMatchObject({ fate: 'mapped', note: 'edgeroute.port.1.basicAuth=ops:admin:(hidden)' });
    const badPort = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_1_VHOST: 'b.example.com', HAPROXY_1_AUTH: 'ops:admin:secret' }, { servicePorts: [10001, 10002] });
    expect(badPort.labels).toEqual({ 'edgeroute.vhosts': 'a.example.com' });
    expect(marathonLbProblems('/app', badPort.readings)).toEqual([
      { appId: '/app', message: 'marathon-lb label HAPROXY_1_AUTH="ops:admin:(hidden)" has a password hash for user "admin" that is not a $6$ (SHA-512), $5$ (SHA-256) or $1$ (MD5) crypt(3) hash: make one with openssl passwd -6: not routed rather than served without a password' },
    ]);
    // Without a vhost marathon-lb asks for no password (its service port has none): the TCP port routes, as there.
    const tcp = read({ HAPROXY_0_AUTH: `ops:admin:${hash}` });
    expect(tcp.labels).toEqual({ 'edgeroute.tcpPort': 'service' });
    expect(reading(tcp.readings, 'HAPROXY_0_AUTH')).toMatchObject({ fate: 'same', value: 'ops:admin:(hidden)' });
    // An AUTH label of a port marathon-lb does not read is not shown either.
    expect(reading(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_7_AUTH: `ops:admin:${hash}` }).readings, 'HAPROXY_7_AUTH')).toMatchObject({ fate: 'same', value: 'ops:admin:(hidden)' });
  });

  it('maps other balance algorithms to the nearest, with a warning', () => {
    expect(reading(read({ HAPROXY_0_BALANCE: 'roundrobin' }).readings, 'HAPROXY_0_BALANCE')?.fate).toBe('same');
    expect(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_BALANCE: 'first' }).labels).toMatchObject({ 'edgeroute.balance': 'leastconn' });
    for (const balance of ['source', 'uri', 'static-rr', 'hdr(Host)', 'url_param userid', 'random']) {
      const result = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_BALANCE: balance });
      expect(result.labels).not.toHaveProperty('edgeroute.balance');
      expect(reading(result.readings, 'HAPROXY_0_BALANCE')).toMatchObject({ fate: 'unsupported', note: expect.stringContaining('roundrobin') });
    }
    expect(reading(read({ HAPROXY_0_BALANCE: 'fastest' }).readings, 'HAPROXY_0_BALANCE')?.fate).toBe('bad');
  });

  it('gives one warning per bad label, naming it, and one naming every label not honoured; the rest still routes', () => {
    const result = read({
      HAPROXY_0_VHOST: 'a.example.com',
      HAPROXY_0_PORT: 'abc',
      HAPROXY_0_MODE: 'udp',
      HAPROXY_0_BACKEND_HEAD: 'backend {backend}\n  timeout server 300s\n',
      HAPROXY_0_FRONTEND_HEAD: 'frontend x',
      HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH: '/',
      HAPROXY_DEPLOYMENT_COLOUR: 'blue',
    });
    expect(result.labels).toEqual({ 'edgeroute.vhosts': 'a.example.com' });
    const problems = marathonLbProblems('/app', result.readings);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toEqual({ appId: '/app', message: 'marathon-lb label HAPROXY_0_MODE="udp" is not tcp or http: ignored' });
    expect(problems[1]?.message).toMatch(/^marathon-lb label HAPROXY_0_PORT="abc" is not a port \(1 to 65535\)/);
    for (const label of ['HAPROXY_0_BACKEND_HEAD', 'HAPROXY_0_FRONTEND_HEAD', 'HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH']) expect(problems[2]?.message).toContain(label);
    // A colour without its deployment group is ignored, as marathon-lb ignores it.
    expect(reading(result.readings, 'HAPROXY_DEPLOYMENT_COLOUR')?.fate).toBe('same');
  });

  it('maps HTTP_BACKEND_REDIR to edgeroute.redirectRoot and USE_HSTS to edgeroute.hsts, on port 0 and port N, by vhost only', () => {
    const result = read(
      { HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_HTTP_BACKEND_REDIR: ' /my/content ', HAPROXY_0_USE_HSTS: 'yes', HAPROXY_1_VHOST: 'b.example.com', HAPROXY_1_USE_HSTS: 'true' },
      { servicePorts: [10001, 10002], ports: [{ containerPort: null, hostPort: 0, name: null }, { containerPort: null, hostPort: 0, name: null }] },
    );
    expect(result.labels).toMatchObject({ 'edgeroute.redirectRoot': '/my/content', 'edgeroute.hsts': 'true', 'edgeroute.port.1.hsts': 'true' });
    expect(reading(result.readings, 'HAPROXY_0_HTTP_BACKEND_REDIR')).toMatchObject({ fate: 'mapped', note: 'edgeroute.redirectRoot=/my/content' });
    expect(reading(result.readings, 'HAPROXY_0_USE_HSTS')).toMatchObject({ fate: 'mapped', note: 'edgeroute.hsts=true' });
    expect(reading(result.readings, 'HAPROXY_1_USE_HSTS')).toMatchObject({ fate: 'mapped', note: 'edgeroute.port.1.hsts=true' });
    expect(marathonLbProblems('/app', result.readings)).toEqual([]);
    // The default, no vhost (marathon-lb's is_domain never matches), TCP mode: nothing to map.
    expect(reading(read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_USE_HSTS: 'false' }).readings, 'HAPROXY_0_USE_HSTS')?.fate).toBe('same');
    expect(reading(read({ HAPROXY_0_HTTP_BACKEND_REDIR: '/x' }).readings, 'HAPROXY_0_HTTP_BACKEND_REDIR')?.fate).toBe('same');
    expect(reading(read({ HAPROXY_0_USE_HSTS: 'true' }).readings, 'HAPROXY_0_USE_HSTS')?.fate).toBe('same');
    // HTTP on the service port, which edgeroute passes through as TCP.
    expect(reading(read({ HAPROXY_0_MODE: 'http', HAPROXY_0_USE_HSTS: 'true' }).readings, 'HAPROXY_0_USE_HSTS')?.fate).toBe('unsupported');
  });

  it('names HTTP_BACKEND_REDIR in one warning when its value cannot be a Location, and routes the rest', () => {
    const result = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_HTTP_BACKEND_REDIR: 'my content' });
    expect(result.labels).toEqual({ 'edgeroute.vhosts': 'a.example.com' });
    const problems = marathonLbProblems('/app', result.readings);
    expect(problems).toEqual([{ appId: '/app', message: expect.stringMatching(/^marathon-lb label HAPROXY_0_HTTP_BACKEND_REDIR="my content" its value="my content" is not a path starting with \/ or an http\(s\) URL/) }]);
  });

  it("reads zdd.py's labels: the deployment group is the app, the colours merged", () => {
    const result = read({
      HAPROXY_DEPLOYMENT_GROUP: '/shop',
      HAPROXY_DEPLOYMENT_COLOUR: 'green',
      HAPROXY_DEPLOYMENT_STARTED_AT: '2026-11-20T09:12:44.118000',
      HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '4',
      HAPROXY_DEPLOYMENT_NEW_INSTANCES: '2',
      HAPROXY_DEPLOYMENT_ALT_PORT: '10101',
      HAPROXY_0_PORT: '10100',
    });
    expect(result.labels).toEqual({ 'edgeroute.tcpPort': '10100', 'edgeroute.app': 'shop' });
    expect(result.deployment).toEqual({ group: 'shop', startedAt: Date.parse('2026-11-20T09:12:44.118000'), targetInstances: 4 });
    expect(marathonLbProblems('/app', result.readings)).toEqual([]);
    // Without NEW_INSTANCES, marathon-lb drains towards one instance.
    expect(read({ HAPROXY_DEPLOYMENT_GROUP: 'shop', HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '4' }).deployment).toMatchObject({ targetInstances: 1, startedAt: null });
  });

  it('names the marathon-lb label when edgeroute cannot route its value, and routes the rest', () => {
    const result = read({ HAPROXY_0_VHOST: 'a.example.com', HAPROXY_0_PATH: '/api/../x' });
    expect(result.labels).toEqual({ 'edgeroute.vhosts': 'a.example.com' });
    expect(reading(result.readings, 'HAPROXY_0_PATH')).toMatchObject({ fate: 'bad', note: expect.stringContaining('"/api/../x"') });
  });

  it('routes every other service port as marathon-lb does, as edgeroute.port.N, in its own group', () => {
    const labels = { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'a.example.com', HAPROXY_1_GROUP: 'internal', HAPROXY_2_VHOST: 'metrics.example.com', HAPROXY_2_PATH: '/metrics' };
    const ports = { servicePorts: [10001, 10002, 10003] };
    expect(read(labels, ports, 'external').labels).toEqual({
      'edgeroute.group': 'external',
      'edgeroute.vhosts': 'a.example.com',
      'edgeroute.port.2.group': 'external',
      'edgeroute.port.2.vhosts': 'metrics.example.com',
      'edgeroute.port.2.path': '/metrics',
    });
    const internal = read(labels, ports, 'internal');
    expect(internal.labels).toEqual({ 'edgeroute.port.1.group': 'internal', 'edgeroute.port.1.tcpPort': 'service' });
    expect(reading(internal.readings, 'port index 1')).toMatchObject({ fate: 'mapped', value: '10002', note: 'edgeroute.port.1.tcpPort=service (HAProxy nodes)' });
    expect(internal.ports.map((p) => [p.index, p.selected])).toEqual([[0, false], [1, true], [2, false]]);
    // A port index without a service port is skipped, as marathon-lb skips it; a disabled one too.
    expect(reading(read({ HAPROXY_3_VHOST: 'x.example.com' }, ports).readings, 'HAPROXY_3_VHOST')).toMatchObject({ fate: 'same', note: expect.stringContaining('no service port at index 3') });
    expect(read({ HAPROXY_1_ENABLED: 'false' }, ports).labels).toEqual({ 'edgeroute.tcpPort': 'service', 'edgeroute.port.2.tcpPort': 'service' });
  });

  it('is read only for apps without edgeroute.* labels, and for unlabelled apps only by an agent of every group', () => {
    expect(readsMarathonLbLabels({ HAPROXY_GROUP: 'external' }, 'external')).toBe(true);
    expect(readsMarathonLbLabels({ HAPROXY_GROUP: 'external', 'edgeroute.vhosts': 'a.example.com' }, 'external')).toBe(false);
    expect(readsMarathonLbLabels({ owner: 'x' }, 'external')).toBe(false);
    expect(readsMarathonLbLabels({ owner: 'x' }, 'internal,*')).toBe(true);
  });

  it('reads the fixture listing as marathon-lb would route it', () => {
    const { snapshot } = parseAppsResponse(JSON.parse(readFileSync('test/fixtures/marathon/marathon-lb/apps.json', 'utf8')));
    const labels = Object.fromEntries(snapshot.apps.filter((a) => readsMarathonLbLabels(a.labels, '*')).map((a) => [a.id, readMarathonLbLabels(a, '*').labels]));
    expect(labels).toEqual({
      '/shop/web': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'shop.example.com,www.shop.example.com', 'edgeroute.redirectHttps': 'true', 'edgeroute.sticky': 'true' },
      '/shop/api': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.path': '/api', 'edgeroute.stripPath': 'true', 'edgeroute.balance': 'leastconn' },
      '/shop/admin': { 'edgeroute.group': 'external,internal', 'edgeroute.vhosts': 'admin.shop.example.com', 'edgeroute.allowFrom': '10.0.0.0/8,192.168.1.7' },
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
      '/shop/search': null,
      '/shop/gateway': { 'edgeroute.group': 'external', 'edgeroute.vhosts': 'gateway.example.com', 'edgeroute.port.1.group': 'internal', 'edgeroute.port.1.tcpPort': 'service' },
    });
  });
});
