// `edgeroute labels`, the migration report, against a Marathon serving the
// marathon-lb fixture listing: the exact text (checked in beside the
// fixture), the JSON, and the exit code (6 while an app needs attention, 0
// when every app routes as marathon-lb would).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT_ATTENTION, labelsCommand } from '../../agent/cli/labels-command.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'marathon', 'marathon-lb');
const listing = JSON.parse(readFileSync(join(FIXTURES, 'apps.json'), 'utf8')) as { apps: Array<{ id: string }> };
let body = JSON.stringify(listing);
let server: Server;
let marathon: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/v2/apps')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  marathon = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  body = JSON.stringify(listing);
  vi.restoreAllMocks();
});

/** Runs the command in-process: its exit code and what it printed. */
async function labels(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const code = await labelsCommand(['--marathon', marathon, ...args]);
  vi.restoreAllMocks();
  return { code, out };
}

describe('edgeroute labels', () => {
  it.each([
    ['external', ['--marathon-lb-labels', '--group', 'external'], 'report-external.txt'],
    ['internal', ['--marathon-lb-labels', '--group', 'internal'], 'report-internal.txt'],
    ['internal without --marathon-lb-labels', ['--group', 'internal'], 'report-internal-unread.txt'],
  ])('prints the report for %s exactly, and exits 6 while an app needs attention', async (_title, args, expected) => {
    const { code, out } = await labels(...args);
    expect(out).toBe(readFileSync(join(FIXTURES, expected), 'utf8'));
    expect(code).toBe(EXIT_ATTENTION);
  });

  it('exits 0 when every app routes as marathon-lb would', async () => {
    body = JSON.stringify({ apps: listing.apps.filter((a) => ['/shop/web', '/shop/api', '/shop/admin', '/shop/search'].includes(a.id)) });
    const { code, out } = await labels('--marathon-lb-labels', '--group', 'external');
    expect(out.trimEnd().split('\n').at(-1)).toBe('4 apps: 4 routed unchanged, 0 need attention');
    expect(code).toBe(0);
  });

  it('gives the same report as JSON', async () => {
    const { code, out } = await labels('--marathon-lb-labels', '--group', '*', '--json');
    expect(code).toBe(EXIT_ATTENTION);
    const report = JSON.parse(out) as { apps: Array<{ id: string; status: string; haproxy: string; nginx: string; labels: Array<{ label: string; fate: string }> }>; summary: unknown };
    expect(report.summary).toEqual({ apps: 12, unchanged: 10, attention: 2 });
    const redis = report.apps.find((a) => a.id === '/data/redis');
    expect(redis).toMatchObject({ status: 'attention', nginx: 'not routed (TCP port 10004: HAProxy nodes only)', haproxy: 'TCP port 10004' });
    expect(redis?.labels).toContainEqual(expect.objectContaining({ label: 'HAPROXY_0_BALANCE', fate: 'unsupported' }));
    // Every app in the fixture is there: '*' routes the unlabelled one's service port too.
    expect(report.apps.map((a) => a.id)).toEqual([...listing.apps.map((a) => a.id)].sort());
    expect(report.apps.find((a) => a.id === '/batch/worker')).toMatchObject({ status: 'unchanged', haproxy: 'TCP port 10008' });
  });

  it('never prints a basic-auth password hash, in text or JSON', async () => {
    const { out } = await labels('--marathon-lb-labels', '--group', '*');
    expect(out).toContain('HAPROXY_0_AUTH=ops:admin:(hidden): edgeroute.basicAuth=ops:admin:(hidden)');
    expect(out).toContain('HTTP grafana.internal.example.com (basic auth, realm "ops", user admin)');
    const json = (await labels('--marathon-lb-labels', '--group', '*', '--json')).out;
    for (const text of [out, json]) {
      expect(text).not.toContain('$6$');
      expect(text).not.toContain('PN28PbeEoE8');
    }
  });
});
