// A large push (more than 500 apps) goes to the plugin chunked, as the agent
// writes it, and the plugin decodes its lines as the chunks arrive instead of
// after the last byte. Real nginx; pushes written by the agent's nginx
// adapter, and by hand on a raw socket for framing the agent never sends.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRoute } from '../../agent/core/routing-table.js';
import { NginxAdmin } from '../../agent/dataplane/nginx/admin.js';
import { pushBodyText } from '../../agent/dataplane/nginx/push-format.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitForWorkersOn } from '../../agent/sandbox/nginx-workers.js';
import { route } from '../helpers/direct-push.js';
import { startStatusBackend, type StatusBackend } from '../helpers/status-backend.js';

let nginx: NginxNode;
let backend: StatusBackend;
let pids: { master: number; workers: number[] };

const APPS = 600;

function table(tag: string, count = APPS): { version: string; base: null; apps: Record<string, AppRoute> } {
  const routes = Array.from({ length: count }, (_, i) => route(`/${tag}/app-${i}`, [`app-${i}.${tag}.test`], [{ id: `${tag}-${i}`, port: backend.port }]));
  return { version: `${tag}-${count}`, base: null, apps: Object.fromEntries(routes.map((r) => [r.id, r])) };
}

/** The body framed as chunks of the given sizes (the rest in one last chunk), then the end of the body. */
function chunked(body: string, sizes: number[] = []): string {
  const bytes = Buffer.from(body);
  let framed = '';
  let at = 0;
  for (const size of [...sizes, bytes.length]) {
    const piece = bytes.subarray(at, Math.min(at + size, bytes.length));
    at += piece.length;
    if (piece.length > 0) framed += `${piece.length.toString(16)}\r\n${piece.toString('latin1')}\r\n`;
  }
  return `${framed}0\r\n\r\n`;
}

interface RawAnswer {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/**
 * POSTs a chunked push written by hand: `framed` goes out in `writes` pieces
 * of the given sizes, a few milliseconds apart, so nginx reads it in pieces
 * too. `hangUp`: the socket is destroyed after that many bytes instead.
 */
async function rawPush(framed: string, writes: number[] = [], hangUp?: number): Promise<RawAnswer | null> {
  const url = new URL(nginx.adminUrl);
  const socket = net.connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  // The whole answer: its head, then its body (or what came before the connection closed).
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      const split = received.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(received.subarray(0, split).toString('latin1'));
      if (split >= 0 && length && received.length >= split + 4 + Number(length[1])) resolve();
      // A chunked answer (nginx's own, for a buffered push) ends with its last chunk.
      if (split >= 0 && !length && received.subarray(-5).toString('latin1') === '0\r\n\r\n') resolve();
    });
    socket.once('close', () => resolve());
  });
  socket.on('error', () => undefined);
  const head = `POST /edgeroute/apps HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${nginx.adminToken}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const payload = Buffer.from(head + framed, 'latin1');
  const limit = hangUp === undefined ? payload.length : Buffer.byteLength(head) + hangUp;
  let at = 0;
  for (const size of [...writes, payload.length]) {
    if (at >= limit) break;
    const piece = payload.subarray(at, Math.min(at + size, limit));
    at += piece.length;
    socket.write(piece);
    await new Promise((r) => setTimeout(r, 5));
  }
  if (hangUp !== undefined) {
    socket.destroy();
    return null;
  }
  await answered;
  socket.destroy();
  const text = received.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const headers = text.slice(0, split).toLowerCase();
  let body = text.slice(split + 4);
  if (headers.includes('transfer-encoding: chunked')) body = unchunked(body);
  return { status: Number(text.slice(9, 12)), headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

function unchunked(framed: string): string {
  let body = '';
  let at = 0;
  for (;;) {
    const eol = framed.indexOf('\r\n', at);
    const size = parseInt(framed.slice(at, eol), 16);
    if (!(size > 0)) return body;
    body += framed.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

async function storedVersion(): Promise<string | null> {
  const res = await fetch(`${nginx.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginx.adminToken}` } });
  return ((await res.json()) as { version: string | null }).version;
}

async function routes(host: string): Promise<boolean> {
  return (await httpGet(`${nginx.publicUrl}/`, { host })).status === 200;
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2, errorLogLevel: 'warn' });
  backend = await startStatusBackend('task');
  pids = { master: nginx.process.masterPid, workers: nginx.process.workerPids().sort() };
});

afterAll(async () => {
  await nginx?.process.stop();
  await backend?.close();
});

describe('a large push, read as it arrives', () => {
  it('the agent sends it chunked and nginx takes it, without a reload', async () => {
    const push = table('first');
    const result = await new NginxAdmin(nginx.adminUrl, nginx.adminToken).push(push, 'flat');
    expect(result).toMatchObject({ ok: true });
    expect(result.ok && result.generation).toEqual(expect.any(String));
    await waitForWorkersOn(nginx, push.version);
    expect(await routes('app-0.first.test')).toBe(true);
    expect(await routes(`app-${APPS - 1}.first.test`)).toBe(true);
    // The same push by hand shows the way it was read: the answer closes the connection.
    const again = await rawPush(chunked(pushBodyText(push, 'flat'), [65_536, 65_536]));
    expect(again?.status).toBe(200);
    expect(again?.headers).toContain('connection: close');
    expect(JSON.parse(again?.body ?? '')).toMatchObject({ version: push.version, changed: 0 });
    expect({ master: nginx.process.masterPid, workers: nginx.process.workerPids().sort() }).toEqual(pids);
  });

  it('takes a body cut anywhere: in a line, in a chunk size, between CR and LF', async () => {
    const push = table('cut', 3);
    const framed = chunked(pushBodyText(push), [5, 1, 100, 333]);
    // Writes of 1, 2 and 3 bytes around every boundary of the first chunks.
    const answer = await rawPush(framed, [180, 1, 2, 3, 1, 1, 2, 1, 3, 2, 1, 50, 1, 1, 1]);
    expect(answer?.status, answer?.body).toBe(200);
    await waitForWorkersOn(nginx, push.version);
    expect(await routes('app-2.cut.test')).toBe(true);
  });

  it('says "100 Continue" to a client that waits for it before sending the body', async () => {
    const push = table('expect', 3);
    const url = new URL(nginx.adminUrl);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    socket.write(`POST /edgeroute/apps HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${nginx.adminToken}\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n`);
    try {
      await expect.poll(() => received, { timeout: 5_000 }).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
      socket.write(chunked(pushBodyText(push)));
      await expect.poll(() => received, { timeout: 10_000 }).toMatch(/HTTP\/1\.1 200 OK[\s\S]*"version":"expect-3"/);
    } finally {
      socket.destroy();
    }
    await waitForWorkersOn(nginx, push.version);
    expect(await routes('app-1.expect.test')).toBe(true);
  });

  it('a refused line refuses the whole push, named by its line number; the table before keeps routing', async () => {
    const good = table('kept');
    expect((await new NginxAdmin(nginx.adminUrl, nginx.adminToken).push(good, 'flat')).ok).toBe(true);
    await waitForWorkersOn(nginx, good.version);
    const lines = pushBodyText(table('refused'), 'flat').split('\n');
    lines.splice(300, 0, '{"id":"/refused/broken","hash":');
    const answer = await rawPush(chunked(lines.join('\n'), [4096, 4096, 4096]));
    expect(answer?.status).toBe(400);
    expect(JSON.parse(answer?.body ?? '').error).toMatch(/^line 301 is not a JSON object/);
    expect(await storedVersion()).toBe(good.version);
    expect(await routes('app-0.kept.test')).toBe(true);
    expect(await routes('app-0.refused.test')).toBe(false);
  });

  it('broken framing is refused with 400, a chunk past 64 MiB with 413 before it is read', async () => {
    const before = await storedVersion();
    const badSize = await rawPush('zz\r\nhello\r\n0\r\n\r\n');
    expect(badSize?.status).toBe(400);
    expect(JSON.parse(badSize?.body ?? '').error).toContain('chunk size is not a hex number');
    const noCrlf = await rawPush('5\r\nhelloXX0\r\n\r\n');
    expect(noCrlf?.status).toBe(400);
    expect(JSON.parse(noCrlf?.body ?? '').error).toContain('does not end with CRLF');
    const tooLarge = await rawPush(`${(64 * 1024 * 1024 + 1).toString(16)}\r\n{"version":`);
    expect(tooLarge?.status).toBe(413);
    expect(await storedVersion()).toBe(before);
  });

  it('an agent gone halfway through changes nothing, and the next push is taken', async () => {
    const before = await storedVersion();
    const framed = chunked(pushBodyText(table('gone'), 'flat'), [8192, 8192, 8192]);
    expect(await rawPush(framed, [4096, 4096, 4096], Math.floor(framed.length / 2))).toBeNull();
    await expect.poll(() => nginx.process.errorLog(), { timeout: 10_000 }).toContain('push not read');
    expect(await storedVersion()).toBe(before);
    expect(await routes('app-0.gone.test')).toBe(false);
    const next = table('after');
    expect((await new NginxAdmin(nginx.adminUrl, nginx.adminToken).push(next, 'flat')).ok).toBe(true);
    await waitForWorkersOn(nginx, next.version);
    expect(await routes('app-0.after.test')).toBe(true);
    expect({ master: nginx.process.masterPid, workers: nginx.process.workerPids().sort() }).toEqual(pids);
  });
});
