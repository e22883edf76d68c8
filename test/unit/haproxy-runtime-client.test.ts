// The runtime-API client's framing and timeout, against a socket that
// answers like HAProxy's prompt mode: replies end at "\n> ".
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HaproxyRuntime } from '../../agent/dataplane/haproxy/runtime-client.js';
import { ServerModels, serverKey } from '../../agent/dataplane/haproxy/server-models.js';

let server: Server | null = null;

/** A prompt-mode peer: `answer(command)` is each command's reply; `chunk` splits what it writes. */
async function fakeRuntime(answer: (command: string) => string | null, chunk = 0): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'edgeroute-rt-')), 'admin.sock');
  server = createServer((socket: Socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      buffer += data;
      let out = '';
      for (let at = buffer.indexOf('\n'); at !== -1; at = buffer.indexOf('\n')) {
        const command = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        const reply = command === 'prompt' || command.startsWith('set timeout') ? '' : answer(command);
        if (reply === null) continue;
        out += `${reply}\n> `;
      }
      if (chunk === 0) socket.write(out);
      else for (let i = 0; i < out.length; i += chunk) socket.write(out.slice(i, i + chunk));
    });
  });
  await new Promise<void>((resolve) => server!.listen(path, resolve));
  return path;
}

afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = null;
});

describe('HaproxyRuntime', () => {
  it('pairs 100,000 pipelined commands with their replies, in order, across arbitrary chunk boundaries', async () => {
    const path = await fakeRuntime((c) => `reply to ${c}\n`, 7);
    const runtime = new HaproxyRuntime(path, 2_000);
    const commands = Array.from({ length: 100_000 }, (_, i) => `cmd ${i}`);
    const replies = await runtime.run(commands);
    runtime.close();
    expect(replies.length).toBe(100_000);
    expect(replies[0]).toBe('reply to cmd 0');
    expect(replies[99_999]).toBe('reply to cmd 99999');
    expect(replies.every((r, i) => r === `reply to cmd ${i}`)).toBe(true);
  });

  it('fails what waits, with a clear error, when no reply comes for the timeout; the next command reconnects', async () => {
    let silent = true;
    const path = await fakeRuntime((c) => (silent && c === 'show info' ? null : `ok ${c}`));
    const runtime = new HaproxyRuntime(path, 300);
    await expect(runtime.run(['show info'])).rejects.toThrow(/gave no reply for 300 ms/);
    silent = false;
    expect(await runtime.one('show info')).toBe('ok show info');
    runtime.close();
  });
});

describe('ServerModels', () => {
  it('indexes servers by backend through set, replace and delete', () => {
    const models = ServerModels.of([
      { backend: 'pool1', name: 'a', taskId: 't1', weight: 1, draining: false },
      { backend: 'pool1', name: 'b', taskId: 't2', weight: 1, draining: false },
      { backend: 'pool2', name: 'c', taskId: 't3', weight: 1, draining: false },
    ]);
    expect([...models.inBackend('pool1')].map((s) => s.name)).toEqual(['a', 'b']);
    expect(models.holdsAny('pool2')).toBe(true);
    models.delete(serverKey('pool2', 'c'));
    expect(models.holdsAny('pool2')).toBe(false);
    expect([...models.backends()]).toEqual(['pool1']);
    models.set(serverKey('pool1', 'a'), { backend: 'pool1', name: 'a', taskId: 't1', weight: 5, draining: true });
    expect(Object.fromEntries([...models.inBackend('pool1')].map((s) => [s.name, s.weight]))).toEqual({ a: 5, b: 1 });
    models.clear();
    expect(models.holdsAny('pool1')).toBe(false);
    expect(models.size).toBe(0);
  });
});
