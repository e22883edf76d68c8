/**
 * The full listing is read through Node's HTTP client (listing-get.ts), not
 * undici like the other reads: it must still follow redirects, send the
 * credentials only to the Marathon they were given for, refuse an error
 * answer, and give up on a listing that stops arriving.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MarathonClient, MarathonHttpError, parseMarathonUrls } from '../../agent/source/marathon/marathon-client.js';

const LISTING = JSON.stringify({ apps: [{ id: '/web', instances: 1, tasks: [] }, { id: '/api', instances: 1, tasks: [] }] });

const servers: Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('MarathonClient.fetchApps', () => {
  it('reads the listing through redirects, with the credentials only on the Marathon they were given for', async () => {
    const seen: Array<{ at: string; authorization: string | undefined }> = [];
    const leader = await serve((req, res) => {
      seen.push({ at: 'leader', authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(LISTING);
    });
    const standby = await serve((req, res) => {
      seen.push({ at: `standby ${req.url}`, authorization: req.headers.authorization });
      if (req.url?.startsWith('/moved')) {
        res.writeHead(307, { location: `${leader}/v2/apps?embed=apps.tasks` });
      } else {
        res.writeHead(302, { location: '/moved/v2/apps?embed=apps.tasks' });
      }
      res.end();
    });
    const client = new MarathonClient(parseMarathonUrls(standby.replace('http://', 'http://user:secret@')));
    const { snapshot, answeredMs } = await client.fetchApps();
    expect(snapshot.apps.map((app) => app.id)).toEqual(['/web', '/api']);
    expect(answeredMs).toBeGreaterThanOrEqual(0);
    const basic = `Basic ${Buffer.from('user:secret').toString('base64')}`;
    expect(seen).toEqual([
      { at: 'standby /v2/apps?embed=apps.tasks', authorization: basic },
      { at: 'standby /moved/v2/apps?embed=apps.tasks', authorization: basic },
      { at: 'leader', authorization: undefined },
    ]);
  });

  it('refuses an error answer, and takes the listing from the next Marathon', async () => {
    const down = await serve((_req, res) => {
      res.writeHead(503);
      res.end('not the leader yet');
    });
    const up = await serve((_req, res) => {
      res.writeHead(200);
      res.end(LISTING);
    });
    await expect(new MarathonClient(parseMarathonUrls(down)).fetchApps()).rejects.toBeInstanceOf(MarathonHttpError);
    const { snapshot } = await new MarathonClient(parseMarathonUrls(`${down},${up}`)).fetchApps();
    expect(snapshot.apps).toHaveLength(2);
  });

  it('gives up on a listing that stops arriving halfway', async () => {
    const stalled = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(LISTING.length) });
      res.write(LISTING.slice(0, 20));
    });
    // fetchApps allows six times the client's timeout: 0.3 s here.
    await expect(new MarathonClient(parseMarathonUrls(stalled), { timeoutMs: 50 }).fetchApps()).rejects.toThrow();
  });
});
