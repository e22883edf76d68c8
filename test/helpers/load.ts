/**
 * Continuous traffic through nginx that counts every request that did not get
 * a 200. Every other request is a POST: nginx never retries a POST that
 * reached a backend, so a backend dying under traffic shows up as a failure
 * instead of being hidden by a retry. Like browsers and OkHttp, the client
 * sends a request again (once, on a new connection) when a reused
 * keep-alive connection closed before any answer; such retries are
 * counted, not hidden.
 */
import { Agent } from 'node:http';
import { httpRequest, type HttpReply, type RequestOptions } from '../../agent/sandbox/http-get.js';

/**
 * One request sent as browsers and OkHttp send it: when its reused
 * keep-alive connection closed before any answer (the server never read
 * it), it is sent again once, on a new connection (from the pool it could
 * get another connection the server is closing), after `onResend`. A
 * failure says on which connection it came.
 */
export async function requestAsBrowsersDo(url: string, opts: RequestOptions & { agent: Agent }, onResend: (err: Error) => void): Promise<HttpReply> {
  try {
    return await httpRequest(url, opts);
  } catch (err) {
    const failed = err as Error & { staleKeepAlive?: boolean; reusedSocket?: boolean };
    if (!failed.staleKeepAlive) throw Object.assign(failed, { message: `${failed.message} (${failed.reusedSocket ? 'on a reused connection' : 'on a new connection'})` });
    onResend(failed);
    const { agent: _pooled, ...fresh } = opts;
    try {
      return await httpRequest(url, fresh);
    } catch (again) {
      throw Object.assign(again as Error, { message: `${(again as Error).message} (resent on a new connection)` });
    }
  }
}

export interface LoadReport {
  readonly sent: number;
  readonly failed: number;
  /** The first failures, "status:body" or the error. */
  readonly failures: readonly string[];
  /** Requests answered by each backend (body = task id). */
  readonly byBackend: ReadonlyMap<string, number>;
  /** The slowest request, answered or failed, in ms. */
  readonly worstMs: number;
  /**
   * Requests sent again because a reused keep-alive connection closed before
   * any answer (the server never read them), as browsers and OkHttp do.
   */
  readonly staleRetries: number;
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
  let worstMs = 0;
  let staleRetries = 0;
  const send = (post: boolean): Promise<HttpReply> =>
    requestAsBrowsersDo(`${url}${opts.path ?? '/'}`, { host, agent, headers: opts.headers, timeoutMs: 10_000, method: post ? 'POST' : 'GET', body: post ? 'order=42' : undefined }, () => staleRetries++);
  const worker = async () => {
    while (running && sent < maxRequests) {
      sent++;
      const started = performance.now();
      const post = sent % 2 === 0;
      try {
        const reply = await send(post);
        if (reply.status === 200) byBackend.set(reply.body, (byBackend.get(reply.body) ?? 0) + 1);
        else {
          failed++;
          if (failures.length < 20) failures.push(`${reply.status}:${reply.body.trim()}`);
        }
      } catch (err) {
        failed++;
        if (failures.length < 20) failures.push(`${post ? 'POST' : 'GET'} ${(err as Error).message}`);
      }
      worstMs = Math.max(worstMs, performance.now() - started);
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 4 }, worker);
  return {
    sent: () => sent,
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return { sent, failed, failures, byBackend, worstMs: Math.round(worstMs), staleRetries };
    },
  };
}
