// A push larger than the shared dict can hold is refused whole (507): nginx
// keeps routing with the table it had, in every worker, including workers
// that start later and read the whole table from the dict.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { pushBodyText, type PushBody } from '../../agent/dataplane/nginx/push-format.js';
import { answers } from '../helpers/traffic.js';

const APPS = 20;
let nginx: NginxNode;
const servers: Server[] = [];
let oldPort = 0;
let newPort = 0;

async function backend(name: string): Promise<number> {
  const server = createServer((_req, res) => res.end(name));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function route(i: number, port: number, tag: string) {
  return {
    id: `/a${i}`,
    hash: `${tag}-${i}`,
    vhosts: [`a${i}.test`],
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: `/a${i}`, backends: [{ id: tag, address: '127.0.0.1', port, weight: 1 }] } },
  };
}

/** One app too big for the dict: 6,000 backends. */
function hugeRoute() {
  return {
    id: '/huge',
    hash: 'huge',
    vhosts: ['huge.test'],
    defaultVersion: 'stable',
    versions: {
      stable: {
        marathonAppId: '/huge',
        backends: Array.from({ length: 6000 }, (_, k) => ({ id: `huge.${k}`, address: '127.0.0.1', port: 1 + k, weight: 1 })),
      },
    },
  };
}

async function push(body: { version: string; base: string | null; apps: Record<string, unknown> }): Promise<{ status: number; body: string }> {
  const res = await fetch(`${nginx.adminUrl}/edgeroute/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${nginx.adminToken}`, 'content-type': 'application/x-ndjson' },
    body: pushBodyText(body as PushBody),
  });
  return { status: res.status, body: await res.text() };
}

async function storedVersion(): Promise<string | null> {
  const res = await fetch(`${nginx.adminUrl}/edgeroute/inflight`, { headers: { authorization: `Bearer ${nginx.adminToken}` } });
  const body = (await res.json()) as { version: string | null; settled: boolean };
  return body.settled ? body.version : null;
}

/** Which backend answers each app (several requests, so both workers are asked). */
async function servedBy(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < APPS; i++) out[`a${i}`] = [...(await answers(nginx.publicUrl, `a${i}.test`, 6)).keys()].sort();
  return out;
}

function everyApp(answer: string): Record<string, string[]> {
  return Object.fromEntries(Array.from({ length: APPS }, (_, i) => [`a${i}`, [answer]]));
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2, dictSize: '256k' });
  oldPort = await backend('old');
  newPort = await backend('new');
  const apps = Object.fromEntries(Array.from({ length: APPS }, (_, i) => [`/a${i}`, route(i, oldPort, 'old')]));
  expect((await push({ version: 'v1', base: null, apps })).status).toBe(200);
  await waitFor('every worker on v1', async () => ((await storedVersion()) === 'v1' ? true : undefined));
});

afterAll(async () => {
  await nginx?.process.stop();
  for (const server of servers) server.close();
});

describe('a push the shared dict cannot hold', () => {
  it('is refused with 507 and none of it is routed, not even by workers started afterwards', async () => {
    // Twenty small changes and one app too big for the dict: whatever order the
    // plugin writes them in, some small ones are stored before the big one fails.
    const apps: Record<string, unknown> = { '/huge': hugeRoute() };
    for (let i = 0; i < APPS; i++) apps[`/a${i}`] = route(i, newPort, 'new');
    const refused = await push({ version: 'v2', base: 'v1', apps });
    expect(refused.status).toBe(507);
    expect(refused.body).toContain('shared dict edgeroute');
    expect(JSON.parse(refused.body).version).toBe('v1');

    expect(await servedBy()).toEqual(everyApp('old'));
    expect([...(await answers(nginx.publicUrl, 'huge.test', 2)).keys()]).toEqual(['404:edgeroute: no app serves this host']);

    // New workers compile every route from the dict.
    const master = nginx.process.masterPid;
    const workersBefore = nginx.process.workerPids();
    await nginx.process.reload();
    await waitFor('new workers', () => {
      const now = nginx.process.workerPids();
      return now.length === 2 && now.every((pid) => !workersBefore.includes(pid)) ? true : undefined;
    });
    expect(nginx.process.masterPid).toBe(master);
    expect(await servedBy()).toEqual(everyApp('old'));
    expect(nginx.process.errorLog()).not.toMatch(/exited on signal/);
  });

  it('leaves the table ready for the agent\'s next push on the old base', async () => {
    const accepted = await push({ version: 'v3', base: 'v1', apps: { '/a0': route(0, newPort, 'new') } });
    expect(accepted.status).toBe(200);
    await waitFor('every worker on v3', async () => ((await storedVersion()) === 'v3' ? true : undefined));
    const served = await servedBy();
    expect(served.a0).toEqual(['new']);
    expect(served.a1).toEqual(['old']);
  });

  it('is refused the same when it comes chunked, read as it arrives', async () => {
    const apps: Record<string, unknown> = { '/huge': hugeRoute() };
    for (let i = 0; i < APPS; i++) apps[`/a${i}`] = route(i, newPort, 'newer');
    const text = pushBodyText({ version: 'v4', base: 'v3', apps } as PushBody);
    const pieces = [Buffer.from(text.slice(0, 1000)), Buffer.from(text.slice(1000))];
    const refused = await httpRequest(`${nginx.adminUrl}/edgeroute/apps`, {
      method: 'POST',
      chunkedBody: pieces,
      headers: { authorization: `Bearer ${nginx.adminToken}`, 'content-type': 'application/x-ndjson' },
      timeoutMs: 30_000,
    });
    expect(refused.status).toBe(507);
    expect(refused.headers.connection).toBe('close');
    expect(JSON.parse(refused.body)).toMatchObject({ version: 'v3', error: expect.stringContaining('shared dict edgeroute') });
    // The undone routes are announced again, so every worker settles back on v3.
    await waitFor('every worker back on v3', async () => ((await storedVersion()) === 'v3' ? true : undefined));
    const served = await servedBy();
    expect(served.a0).toEqual(['new']);
    expect(served.a1).toEqual(['old']);
  });
});
