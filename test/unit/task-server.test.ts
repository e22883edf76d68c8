import { afterEach, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startTaskServer, type TaskServer } from '../sim/task-server.js';

let server: TaskServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('task server', () => {
  it('answers with its task id', async () => {
    server = await startTaskServer('app.1', '127.0.0.1');
    const reply = await httpGet(`http://127.0.0.1:${server.port}/anything`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('app.1');
    expect(reply.headers['x-task-id']).toBe('app.1');
  });

  it('answers /slow/<ms> after that many milliseconds', async () => {
    server = await startTaskServer('app.2', '127.0.0.1');
    const started = Date.now();
    const reply = await httpGet(`http://127.0.0.1:${server.port}/slow/300?x=1`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('app.2');
  });

  it('cuts a slow request when it closes, as a dying process does', async () => {
    server = await startTaskServer('app.3', '127.0.0.1');
    const pending = httpGet(`http://127.0.0.1:${server.port}/slow/5000`, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.close();
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
