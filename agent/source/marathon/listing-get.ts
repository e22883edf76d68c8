/**
 * A GET whose answer is read as a stream, through Node's own HTTP client:
 * for Marathon's full listing (50 MB at 10,000 apps), Node's HTTP parser
 * reads the body for 100-110 ms of CPU where undici's request() took
 * 150-280 ms (measured on this project's benchmark machine), the agent's
 * largest cost after parsing the apps themselves. Redirects are followed as
 * undici's redirect interceptor did for the other reads.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface StreamedGetOptions {
  readonly headers: Readonly<Record<string, string>>;
  /** Aborts the request, and the reading of its body, when it fires. */
  readonly signal: AbortSignal;
  /** PEM of the CA that signed the server's certificate (HTTPS). */
  readonly ca?: string;
  readonly maxRedirections: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The answer of the last URL in the redirect chain; its body is the caller's to read (or dump). */
export async function streamedGet(url: string, opts: StreamedGetOptions): Promise<IncomingMessage> {
  let target = new URL(url);
  for (let hop = 0; ; hop++) {
    const res = await once(target, opts);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || location === undefined || hop >= opts.maxRedirections) return res;
    res.resume();
    const next = new URL(location, target);
    // Credentials go only where they were meant for, as undici does.
    if (next.origin !== target.origin) opts = { ...opts, headers: withoutAuthorization(opts.headers) };
    target = next;
  }
}

function once(url: URL, opts: StreamedGetOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { method: 'GET', headers: opts.headers, signal: opts.signal };
    const req = url.protocol === 'https:' ? httpsRequest(url, opts.ca === undefined ? options : { ...options, ca: opts.ca }, resolve) : httpRequest(url, options, resolve);
    req.on('error', reject);
    req.end();
  });
}

function withoutAuthorization(headers: Readonly<Record<string, string>>): Record<string, string> {
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() !== 'authorization') rest[name] = value;
  return rest;
}
