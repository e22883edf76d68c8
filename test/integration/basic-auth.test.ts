// edgeroute.basicAuth through real nginx and real HAProxy (one test body,
// both rigs): hashes made by `openssl passwd -6/-5/-1` as operators make
// them, checked per request by each plane (nginx: libcrypt's crypt_r;
// HAProxy: SHA-crypt over its C digests), a changed password taken without a
// reload, and no hash anywhere the agent or the data plane shows or logs.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { RIGS, startRigNode, type DataPlanePids, type RigNode } from '../helpers/data-plane-rig.js';
import { waitForBackends, waitForStatus } from '../helpers/traffic.js';

async function passwd(kind: '-6' | '-5' | '-1', password: string): Promise<string> {
  return (await execa('openssl', ['passwd', kind, password])).stdout.trim();
}

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

describe.each(RIGS)('edgeroute.basicAuth ($kind)', (rig) => {
  let marathon: MarathonSim;
  let node: RigNode;
  let before: DataPlanePids;
  const hashes: string[] = [];
  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
  const get = (host: string, headers: Record<string, string> = {}, path = '/') => httpGet(`${node.publicUrl}${path}`, { host, headers });

  beforeAll(async () => {
    const [six, five, md5, other] = await Promise.all([passwd('-6', 'pw six'), passwd('-5', 'pw:five'), passwd('-1', 'pw-md5'), passwd('-6', 'other pw')]);
    hashes.push(six, five, md5, other);
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    await marathon.deploy({ id: '/ops/grafana', instances: 2, labels: { 'edgeroute.vhosts': 'grafana.test', 'edgeroute.basicAuth': `Grafana (ops):six:${six},five:${five},md5:${md5}` } });
    // The same user name, another password: one app's credentials open no other app.
    await marathon.deploy({ id: '/ops/other', instances: 1, labels: { 'edgeroute.vhosts': 'other.test', 'edgeroute.basicAuth': `other:six:${other}` } });
    await marathon.deploy({ id: '/ops/secure', instances: 1, labels: { 'edgeroute.vhosts': 'secure.test', 'edgeroute.redirectHttps': 'true', 'edgeroute.basicAuth': `secure:six:${six}` } });
    await marathon.deploy({ id: '/open', instances: 1, labels: { 'edgeroute.vhosts': 'open.test' } });
    // A hash edgeroute cannot check on port 1: port 1 stays closed, port 0 routes.
    await marathon.deploy({
      id: '/ops/ports',
      instances: 1,
      morePorts: [[1]],
      labels: { 'edgeroute.vhosts': 'ports.test', 'edgeroute.port.1.vhosts': 'ports1.test', 'edgeroute.port.1.basicAuth': 'ops:admin:$6$x$cut-hash-value' },
    });
    node = await startRigNode(rig, marathon.url, { listen: '127.0.0.1:0' });
    await waitForBackends(node.publicUrl, 'open.test', taskIds('/open'));
    await waitForStatus(node.publicUrl, 'grafana.test', 401);
    before = await node.pids();
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  it('asks for a password (401 with the realm) without one, with a wrong one or an unknown user', async () => {
    for (const headers of [{}, basic('six', 'pw sixx'), basic('six', ''), basic('nobody', 'pw six'), basic('Six', 'pw six'), { authorization: 'Bearer pw six' }]) {
      const reply = await get('grafana.test', headers);
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Basic realm="Grafana (ops)"');
      expect(taskIds('/ops/grafana')).not.toContain(reply.body.trim());
    }
  });

  it('lets each user in with its password, $6$, $5$ (a colon in it) and $1$, again and again (remembered), the header passed on', async () => {
    for (const [user, password] of [['six', 'pw six'], ['five', 'pw:five'], ['md5', 'pw-md5']] as const) {
      for (let i = 0; i < 5; i++) {
        const reply = await get('grafana.test', basic(user, password));
        expect(reply.status).toBe(200);
        expect(taskIds('/ops/grafana')).toContain(reply.body);
      }
    }
    // The scheme in any case; the backend sees the Authorization header, as behind marathon-lb.
    const reply = await get('grafana.test', { authorization: `basic ${Buffer.from('six:pw six').toString('base64')}` }, '/headers');
    expect(reply.status).toBe(200);
    const { headers } = JSON.parse(reply.body) as { headers: string[] };
    expect(headers.map((h) => h.toLowerCase())).toContain('authorization');
  });

  it("opens no other app with one app's password; apps without the setting ask for nothing", async () => {
    expect((await get('other.test', basic('six', 'pw six'))).status).toBe(401);
    expect((await get('other.test', basic('six', 'other pw'))).status).toBe(200);
    expect((await get('grafana.test', basic('six', 'other pw'))).status).toBe(401);
    expect(taskIds('/open')).toContain((await get('open.test')).body);
  });

  it('redirects plain HTTP to https before asking for a password', async () => {
    const reply = await get('secure.test');
    expect(reply.status).toBe(301);
    expect(reply.headers.location).toMatch(/^https:\/\/secure\.test/);
  });

  it('takes a changed password at once: the old one is refused, the new one let in', async () => {
    const rotated = await passwd('-6', 'rotated');
    hashes.push(rotated);
    await marathon.deploy({ id: '/ops/other', instances: 1, labels: { 'edgeroute.vhosts': 'other.test', 'edgeroute.basicAuth': `other:six:${rotated}` } });
    await waitFor('the new password', async () => ((await get('other.test', basic('six', 'rotated'))).status === 200 ? true : undefined), 15_000);
    // Every worker (nginx) and thread (HAProxy) that remembered the old one.
    for (let i = 0; i < 8; i++) expect((await get('other.test', basic('six', 'other pw'))).status).toBe(401);
  });

  it("leaves a port with a hash it cannot check closed, naming app and label, the app's other port routed", async () => {
    expect(taskIds('/ops/ports')).toContain((await get('ports.test')).body);
    expect((await get('ports1.test')).status).toBe(404);
    const warning = node.logs.lines().find((l) => l.app === '/ops/ports' && String(l.problem).includes('edgeroute.port.1.basicAuth'));
    expect(String(warning?.problem)).toMatch(/has a password hash for user "admin" that is not a \$6\$/);
  });

  it('shows realm and users, never a hash: /v1/state, the agent log, the data plane log', async () => {
    await node.agent.ready;
    const state = (await (await fetch(`${node.agent.apiUrl}/v1/state`)).json()) as { apps: Array<{ id: string; settings: Record<string, unknown> }> };
    expect(state.apps.find((a) => a.id === '/ops/grafana')?.settings).toEqual({ basicAuth: { realm: 'Grafana (ops)', users: ['five', 'md5', 'six'] } });
    const shown = [JSON.stringify(state), JSON.stringify(node.logs.lines()), node.dataPlane.log()].join('\n');
    for (const hash of [...hashes, 'cut-hash-value']) expect(shown).not.toContain(hash.slice(-20));
  });

  it('never reloaded the data plane', async () => {
    expect(await node.pids()).toEqual(before);
    expect(node.dataPlane.log()).not.toMatch(rig.differs.workerReplaced);
  });
});
