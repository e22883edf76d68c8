/** HTTP requests with a chosen Host header (fetch refuses to set Host). */
import { Agent, request } from 'node:http';

export interface HttpReply {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

const noKeepAlive = new Agent({ keepAlive: false });

export interface RequestOptions {
  host?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  agent?: Agent;
  method?: string;
  body?: string;
  /** A body sent chunked instead (no Content-Length), each piece written as it comes. */
  chunkedBody?: readonly Buffer[];
}

export function httpGet(url: string, opts: RequestOptions = {}): Promise<HttpReply> {
  return httpRequest(url, { ...opts, method: 'GET' });
}

/**
 * Rejects with `staleKeepAlive: true` when a reused keep-alive connection
 * closed before any answer: the server never read the request, and HTTP
 * clients (browsers, OkHttp, undici) send it again on a new connection.
 * `reusedSocket` says whether the request went on a reused connection.
 */
export function httpRequest(url: string, opts: RequestOptions = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.host) headers.host = opts.host;
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const method = opts.method ?? 'GET';
    const req = request(url, { method, headers, agent: opts.agent ?? noKeepAlive, timeout: opts.timeoutMs ?? 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', (err: Error) => reject(Object.assign(err, { staleKeepAlive: req.reusedSocket && !answered, reusedSocket: req.reusedSocket })));
    if (opts.chunkedBody === undefined) {
      req.end(opts.body);
      return;
    }
    for (const piece of opts.chunkedBody) req.write(piece);
    req.end();
  });
}
