/**
 * Continuous traffic through nginx that counts every request that did not get
 * a 200. Every other request is a POST: nginx never retries a POST that
 * reached a backend, so a backend dying under traffic shows up as a failure
 * instead of being hidden by a retry.
 */
import { Agent } from 'node:http';
import { httpRequest } from '../../agent/sandbox/http-get.js';

export interface LoadReport {
  readonly sent: number;
  readonly failed: number;
  /** The first failures, "status:body" or the error. */
  readonly failures: readonly string[];
  /** Requests answered by each backend (body = task id). */
  readonly byBackend: ReadonlyMap<string, number>;
}

export interface RunningLoad {
  /** Requests so far; a test can wait for traffic to flow. */
  sent(): number;
  stop(): Promise<LoadReport>;
}

export function startLoad(url: string, host: string, opts: { concurrency?: number; maxRequests?: number; headers?: Record<string, string>; path?: string } = {}): RunningLoad {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 4 });
  const maxRequests = opts.maxRequests ?? 200_000;
  let sent = 0;
  let failed = 0;
  let running = true;
  const failures: string[] = [];
  const byBackend = new Map<string, number>();
  const worker = async () => {
    while (running && sent < maxRequests) {
      sent++;
      try {
        const post = sent % 2 === 0;
        const reply = await httpRequest(`${url}${opts.path ?? '/'}`, { host, agent, headers: opts.headers, timeoutMs: 10_000, method: post ? 'POST' : 'GET', body: post ? 'order=42' : undefined });
        if (reply.status === 200) byBackend.set(reply.body, (byBackend.get(reply.body) ?? 0) + 1);
        else {
          failed++;
          if (failures.length < 20) failures.push(`${reply.status}:${reply.body.trim()}`);
        }
      } catch (err) {
        failed++;
        if (failures.length < 20) failures.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 4 }, worker);
  return {
    sent: () => sent,
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return { sent, failed, failures, byBackend };
    },
  };
}
