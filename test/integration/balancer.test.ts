// The plugin's data path on its own: pushes straight to the admin endpoint,
// real backends on loopback, real nginx.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { pushBodyText } from '../../agent/dataplane/nginx/push-format.js';
import { answers, waitForStatus } from '../helpers/traffic.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { waitForWorkersOn } from '../../agent/sandbox/nginx-workers.js';

let nginx: NginxNode;
const servers: Server[] = [];
let version = 0;

async function backend(name: string): Promise<number> {
  const server = createServer((req, res) => {
    res.setHeader('x-seen-version', String(req.headers['x-edgeroute-version']));
    res.setHeader('x-seen-host', String(req.headers.host));
    res.end(name);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function pushApp(id: string, vhosts: string[], backends: Array<{ id: string; port: number; weight: number }>): Promise<void> {
  version++;
  const app = {
    id,
    hash: `h${version}`,
    vhosts,
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: id, backends: backends.map((b) => ({ ...b, address: '127.0.0.1' })) } },
  };
  const res = await fetch(`${nginx.adminUrl}/edgeroute/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${nginx.adminToken}`, 'content-type': 'application/x-ndjson' },
    body: pushBodyText({ version: `v${version}`, base: null, apps: { [id]: app } }),
  });
  expect(res.status).toBe(200);
  // The worker that took the push switches at once, the other within a sync
  // interval: until both have, a request may still meet the previous table.
  await waitForWorkersOn(nginx, `v${version}`);
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2 });
});

afterAll(async () => {
  await nginx?.process.stop();
  for (const server of servers) server.close();
});

describe('balancer', () => {
  it('retries the next peer when one refuses connections, so no request fails', async () => {
    const live = [await backend('a'), await backend('b')];
    const dead = [await freePort(), await freePort()];
    await pushApp('/r', ['r.test'], [
      { id: 'a', port: live[0] as number, weight: 100 },
      { id: 'dead1', port: dead[0] as number, weight: 100 },
      { id: 'b', port: live[1] as number, weight: 100 },
      { id: 'dead2', port: dead[1] as number, weight: 100 },
    ]);
    await waitForStatus(nginx.publicUrl, 'r.test', 200);
    const seen = await answers(nginx.publicUrl, 'r.test', 60);
    expect(Object.fromEntries(seen)).toEqual({ a: expect.any(Number), b: expect.any(Number) });
    expect((seen.get('a') ?? 0) + (seen.get('b') ?? 0)).toBe(60);
  });

  it('spreads requests in proportion to weight', async () => {
    const heavy = await backend('heavy');
    const light = await backend('light');
    await pushApp('/w', ['w.test'], [
      { id: 'heavy', port: heavy, weight: 300 },
      { id: 'light', port: light, weight: 100 },
    ]);
    await waitForStatus(nginx.publicUrl, 'w.test', 200);
    const seen = await answers(nginx.publicUrl, 'w.test', 200);
    // Each worker rotates exactly 3:1; two workers leave at most a few requests of slack.
    expect(seen.get('heavy')).toBeGreaterThanOrEqual(144);
    expect(seen.get('heavy')).toBeLessThanOrEqual(156);
  });

  it('overwrites a client-sent X-Edgeroute-Version', async () => {
    const port = await backend('v');
    await pushApp('/v', ['v.test'], [{ id: 'v', port, weight: 1 }]);
    await waitForStatus(nginx.publicUrl, 'v.test', 200);
    const reply = await httpGet(`${nginx.publicUrl}/`, { host: 'v.test', headers: { 'x-edgeroute-version': 'grey' } });
    expect(reply.headers['x-seen-version']).toBe('stable');
  });

  it('tells the backend the host it was routed by, also when the request line names it', async () => {
    await pushApp('/h1', ['h1.test'], [{ id: 'h1', port: await backend('h1'), weight: 1 }]);
    await waitForStatus(nginx.publicUrl, 'h1.test', 200);
    const port = Number(new URL(nginx.publicUrl).port);
    const exchange = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.on('error', reject);
      });
    // The Host header as the client wrote it, port and case kept.
    expect(await exchange('GET / HTTP/1.1\r\nHost: H1.test:8080\r\nConnection: close\r\n\r\n')).toMatch(/x-seen-host: H1\.test:8080\r\n[\s\S]*\r\nh1$/i);
    // nginx routes by the request line's host (RFC 9112 3.2.2): the backend must not be told another.
    expect(await exchange('GET http://h1.test/ HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n')).toMatch(/x-seen-host: h1\.test\r\n[\s\S]*\r\nh1$/i);
    // HTTP/1.0 needs no Host header.
    expect(await exchange('GET http://h1.test/ HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200[\s\S]*x-seen-host: h1\.test\r\n/i);
  });
});

describe('request metrics', () => {
  it('counts requests by app, version and status class, latency and retried failures, summed over workers', async () => {
    const port = await backend('m');
    const dead = await freePort();
    await pushApp('/metered', ['metered.test'], [
      { id: 'm', port, weight: 100 },
      { id: 'dead', port: dead, weight: 100 },
    ]);
    await waitForStatus(nginx.publicUrl, 'metered.test', 200);
    const sent = 40;
    await answers(nginx.publicUrl, 'metered.test', sent - 1);
    const read = async () => {
      const res = await fetch(`${nginx.adminUrl}/metrics`, { headers: { authorization: `Bearer ${nginx.adminToken}` } });
      expect(res.status).toBe(200);
      return res.text();
    };
    const text = await waitFor('the workers to flush', async () => {
      const body = await read();
      return body.includes(`edgeroute_requests_total{app="/metered",version="stable",status="2xx"} ${sent}`) ? body : undefined;
    });
    expect(text).toContain(`edgeroute_request_duration_seconds_count{app="/metered",version="stable"} ${sent}`);
    expect(text).toMatch(/edgeroute_request_duration_seconds_bucket\{app="\/metered",version="stable",le="\+Inf"\} 40/);
    const failures = Number(/edgeroute_upstream_failures_total\{app="\/metered",version="stable"\} (\d+)/.exec(text)?.[1]);
    expect(failures).toBeGreaterThan(5);
    expect((await fetch(`${nginx.adminUrl}/metrics`)).status).toBe(401);
  });
});
