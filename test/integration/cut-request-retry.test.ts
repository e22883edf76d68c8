// A task that closes the connection under a request without answering it
// (it died under it, or closed a kept-alive connection as the request came).
// nginx sends a GET, HEAD, PUT, DELETE or OPTIONS again, to the other task,
// and never a POST, PATCH or LOCK it has written, since the task may have
// started the work; so does an HAProxy node with haproxy-conf
// --retry-unanswered (HAProxy's L7 retries, which copy every request). By
// default an HAProxy node sends nothing again: the client gets 502, or on a
// kept-alive connection HAProxy closes it without an answer. The task's
// /drop-first/<token> path drops the first arrival of each token.
import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, type HttpReply } from '../../agent/sandbox/http-get.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { dropFirstArrivals } from '../sim/task-server.js';
import { HAPROXY_RIG, NGINX_RIG, startRigNode, type DataPlaneOptions, type DataPlanePids, type DataPlaneRig, type RigNode } from '../helpers/data-plane-rig.js';
import { waitForBackends } from '../helpers/traffic.js';

/** What a request got: an answer, or the connection closed under it (and whether it was reused). */
type Outcome = { status: number; body: string } | { closed: true; reused: boolean };

interface Case {
  readonly rig: DataPlaneRig;
  readonly name: string;
  readonly options: DataPlaneOptions;
  /** Whether a GET (any method but POST, PATCH and LOCK) is sent again. */
  readonly retries: boolean;
}

const CASES: readonly Case[] = [
  { rig: NGINX_RIG, name: 'nginx', options: {}, retries: true },
  { rig: HAPROXY_RIG, name: 'haproxy --retry-unanswered', options: { retryUnanswered: true }, retries: true },
  { rig: HAPROXY_RIG, name: 'haproxy', options: {}, retries: false },
];

describe.each(CASES)('a request whose task closes the connection without answering ($name)', ({ rig, name, options, retries }) => {
  let marathon: MarathonSim;
  let node: RigNode;
  let before: DataPlanePids;
  let tokens = 0;
  const slug = name.replace(/[^a-z]+/g, '-');
  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);

  async function send(host: string, path: string, method: string, agent?: Agent): Promise<Outcome> {
    try {
      const reply: HttpReply = await httpRequest(`${node.publicUrl}${path}`, { host, method, agent, body: method === 'GET' ? undefined : 'order=42' });
      return { status: reply.status, body: reply.body };
    } catch (err) {
      return { closed: true, reused: (err as { reusedSocket?: boolean }).reusedSocket === true };
    }
  }

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    await marathon.deploy({ id: '/shop', instances: 2, labels: { 'edgeroute.vhosts': 'shop.test' } });
    // An app with a path goes through HAProxy's Lua action rather than the host map.
    await marathon.deploy({ id: '/shop-api', instances: 2, labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.path': '/api' } });
    node = await startRigNode(rig, marathon.url, { listen: '127.0.0.1:0' }, options);
    await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop'));
    before = await node.pids();
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  for (const prefix of ['', '/api']) {
    const app = prefix === '' ? '/shop' : '/shop-api';
    if (retries) {
      it(`sends a GET, HEAD, PUT, DELETE or OPTIONS again, to the other task (${app})`, async () => {
        for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']) {
          const token = `${slug}-idem-${++tokens}`;
          const outcome = await send('shop.test', `${prefix}/drop-first/${token}`, method);
          expect(outcome, `${method} ${app}`).toMatchObject({ status: 200 });
          if (method !== 'HEAD') expect(taskIds(app)).toContain((outcome as { body: string }).body);
          expect(dropFirstArrivals(token), `${method} ${app}`).toBe(2);
        }
      });
    } else {
      it(`sends nothing again: a GET gets 502, or its kept-alive connection closed (${app})`, async () => {
        const token = `${slug}-idem-${++tokens}`;
        expect(await send('shop.test', `${prefix}/drop-first/${token}`, 'GET')).toMatchObject({ status: 502 });
        expect(dropFirstArrivals(token)).toBe(1);
        const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          expect(await send('shop.test', `${prefix}/`, 'GET', keepAlive)).toMatchObject({ status: 200 });
          const again = `${slug}-idem-${++tokens}`;
          expect(await send('shop.test', `${prefix}/drop-first/${again}`, 'GET', keepAlive)).toMatchObject({ closed: true, reused: true });
          expect(dropFirstArrivals(again)).toBe(1);
        } finally {
          keepAlive.destroy();
        }
      });
    }

    it(`never sends a POST, PATCH or LOCK again once written: 502, or a kept-alive client's connection closed (${app})`, async () => {
      for (const method of ['POST', 'PATCH', 'LOCK']) {
        const token = `${slug}-once-${++tokens}`;
        expect(await send('shop.test', `${prefix}/drop-first/${token}`, method), `${method} ${app}`).toMatchObject({ status: 502 });
        expect(dropFirstArrivals(token), `${method} ${app}`).toBe(1);

        // The same on a client connection that carried a request before.
        const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          expect(await send('shop.test', `${prefix}/`, 'GET', keepAlive)).toMatchObject({ status: 200 });
          const again = `${slug}-once-${++tokens}`;
          const outcome = await send('shop.test', `${prefix}/drop-first/${again}`, method, keepAlive);
          // HAProxy closes it without an answer, as the task's own connection would have; the client decides.
          expect(outcome, `${method} ${app} on a kept-alive connection`).toMatchObject(rig.differs.cutRequestClosesSilently ? { closed: true, reused: true } : { status: 502 });
          expect(dropFirstArrivals(again), `${method} ${app} on a kept-alive connection`).toBe(1);
        } finally {
          keepAlive.destroy();
        }
      }
    });
  }

  it('kept its processes (no reload)', async () => {
    expect(await node.pids()).toEqual(before);
  });
});
