/** Requests through nginx, the way a client sees them. */
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';

/** Which task ids answer `host`, over `requests` requests (status:body for non-200). */
export async function answers(url: string, host: string, requests: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < requests; i++) {
    const reply = await httpGet(`${url}/`, { host });
    const key = reply.status === 200 ? reply.body : `${reply.status}:${reply.body.trim()}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

/** Waits until exactly `expected` answer `host` (every request a 200 from one of them). */
export async function waitForBackends(url: string, host: string, expected: readonly string[], timeoutMs = 10_000): Promise<void> {
  const want = [...expected].sort().join(',');
  await waitFor(
    `${host} to be served by [${want}]`,
    async () => {
      const seen = await answers(url, host, Math.max(8, expected.length * 4));
      return [...seen.keys()].sort().join(',') === want ? true : undefined;
    },
    timeoutMs,
    100,
  );
}

export async function waitForStatus(url: string, host: string, status: number, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    `${host} to answer ${status}`,
    async () => {
      const reply = await httpGet(`${url}/`, { host });
      return reply.status === status ? reply.body : undefined;
    },
    timeoutMs,
    100,
  );
}
