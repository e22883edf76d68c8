/**
 * Marathon's REST API across several Marathon URLs. It follows the leader
 * (`/v2/leader`), sticks to the URL that answered last, and moves on to the
 * next one when that one fails.
 */
import { readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Agent, fetch, interceptors, request, type Dispatcher, type RequestInit, type Response } from 'undici';
import { ListingParser, type ParsedSnapshot } from '../../core/marathon-apps.js';
import { appIdSegments } from '../../core/marathon-types.js';
import { streamedGet } from './listing-get.js';

export interface MarathonEndpoint {
  readonly baseUrl: string;
  /** From credentials in the URL, which fetch refuses to send itself. */
  readonly authorization: string | null;
}

export class MarathonHttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`GET ${url} answered HTTP ${status}`);
  }
}

/** Splits `--marathon URL[,URL...]`; `http://user:pass@host:8080` becomes basic auth. */
export function parseMarathonUrls(list: string): MarathonEndpoint[] {
  const endpoints = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((raw) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error(`--marathon: "${raw}" is not a URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--marathon: "${raw}" is not http(s)`);
      const authorization = url.username
        ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
        : null;
      url.username = '';
      url.password = '';
      return { baseUrl: url.toString().replace(/\/+$/, ''), authorization };
    });
  if (endpoints.length === 0) throw new Error('--marathon needs at least one URL');
  return endpoints;
}

export interface MarathonClientOptions {
  readonly timeoutMs?: number;
  /** PEM file of the CA that signed Marathon's HTTPS certificate. */
  readonly caFile?: string | null;
}

export class MarathonClient {
  private current = 0;
  private readonly endpoints: MarathonEndpoint[];
  private readonly timeoutMs: number;
  private readonly dispatcher: Dispatcher | undefined;
  /** --marathon-ca's PEM, for the full listing's reads (see listing-get.ts). */
  private readonly ca: string | undefined;
  /**
   * For reads: undici's request() costs about half of what fetch() does per
   * call (no web streams), which an event's read of one app pays each time.
   * It follows redirects as fetch does.
   */
  private readonly reads: Dispatcher;

  constructor(endpoints: readonly MarathonEndpoint[], opts: MarathonClientOptions = {}) {
    this.endpoints = [...endpoints];
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (opts.caFile) {
      let ca: string;
      try {
        ca = readFileSync(opts.caFile, 'utf8');
      } catch (err) {
        throw new Error(`--marathon-ca: cannot read ${opts.caFile}: ${(err as Error).message}`);
      }
      this.dispatcher = new Agent({ connect: { ca } });
      this.ca = ca;
    }
    this.reads = (this.dispatcher instanceof Agent ? this.dispatcher : new Agent()).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  }

  /** fetch with this client's TLS settings. */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { ...init, dispatcher: this.dispatcher });
  }

  /**
   * Asks the Marathons which one leads and makes it the current endpoint.
   * Standbys would proxy REST calls anyway, but the event stream is best taken
   * from the leader. Returns the leader's URL, or null when none answered.
   */
  async followLeader(): Promise<string | null> {
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const asked = this.endpoint;
      try {
        const res = await this.fetch(`${asked.baseUrl}/v2/leader`, { headers: this.headers('application/json'), signal: AbortSignal.timeout(this.timeoutMs) });
        if (res.ok) {
          const body = (await res.json()) as { leader?: unknown };
          if (typeof body.leader === 'string' && body.leader !== '') return this.useLeader(asked, body.leader);
        } else {
          await res.body?.cancel();
        }
      } catch {
        // try the next Marathon
      }
      this.failover();
    }
    return null;
  }

  private useLeader(asked: MarathonEndpoint, leader: string): string {
    const scheme = new URL(asked.baseUrl).protocol;
    const leaderUrl = `${scheme}//${leader}`;
    let index = this.endpoints.findIndex((e) => sameHostPort(e.baseUrl, leaderUrl));
    if (index < 0) {
      // A leader we were not told about: reach it with the same scheme and credentials.
      this.endpoints.push({ baseUrl: leaderUrl, authorization: asked.authorization });
      index = this.endpoints.length - 1;
    }
    this.current = index;
    return this.endpoint.baseUrl;
  }

  /** The endpoint to use now; safe to log (no credentials). */
  get endpoint(): MarathonEndpoint {
    return this.endpoints[this.current] as MarathonEndpoint;
  }

  /** Moves to the next Marathon URL, after the current one failed. */
  failover(): void {
    this.current = (this.current + 1) % this.endpoints.length;
  }

  headers(accept: string): Record<string, string> {
    const headers: Record<string, string> = { accept };
    if (this.endpoint.authorization) headers.authorization = this.endpoint.authorization;
    return headers;
  }

  /** `GET path` as JSON, trying each Marathon once, starting with the current one; `notFound` is returned for a 404. */
  async getJson<T = never>(path: string, notFound?: T): Promise<unknown | T> {
    const text = await this.getText(path, notFound === undefined ? undefined : null);
    if (text === null) return notFound as T;
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new Error(`GET ${this.endpoint.baseUrl}${path} answered malformed JSON: ${(err as Error).message}`);
    }
  }

  /** `GET path` as text, trying each Marathon once; `notFound` is returned for a 404. */
  async getText(path: string, notFound?: null): Promise<string | null> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const url = `${this.endpoint.baseUrl}${path}`;
      try {
        const res = await this.read(url, this.timeoutMs);
        if (res.statusCode === 404 && notFound !== undefined) {
          await res.body.dump();
          return notFound;
        }
        if (!isOk(res.statusCode)) {
          await res.body.dump();
          throw new MarathonHttpError(url, res.statusCode);
        }
        return await res.body.text();
      } catch (err) {
        lastError = err;
        this.failover();
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /**
   * The full listing, parsed a few apps at a time as it arrives (the 50 MB text
   * of a large cluster is never held whole); `answeredMs`: how long Marathon
   * took to start answering. Read through Node's HTTP client, which costs
   * less than half of undici's CPU for a body this size (listing-get.ts).
   */
  async fetchApps(): Promise<ParsedSnapshot & { readonly answeredMs: number }> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const url = `${this.endpoint.baseUrl}/v2/apps?embed=apps.tasks`;
      try {
        const asked = performance.now();
        const res = await streamedGet(url, {
          headers: this.headers('application/json'),
          signal: AbortSignal.timeout(this.timeoutMs * 6),
          ...(this.ca === undefined ? {} : { ca: this.ca }),
          maxRedirections: MAX_REDIRECTIONS,
        });
        const answeredMs = performance.now() - asked;
        const status = res.statusCode ?? 0;
        if (!isOk(status)) {
          res.resume();
          throw new MarathonHttpError(url, status);
        }
        const parser = new ListingParser();
        // Decodes UTF-8 across chunk boundaries.
        const decoder = new StringDecoder('utf8');
        for await (const chunk of res) parser.push(decoder.write(chunk as Buffer));
        parser.push(decoder.end());
        return { ...parser.finish(), answeredMs };
      } catch (err) {
        lastError = err;
        this.failover();
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** `GET url` for JSON, as a stream. */
  private read(url: string, timeoutMs: number): Promise<Dispatcher.ResponseData> {
    return request(url, { headers: this.headers('application/json'), signal: AbortSignal.timeout(timeoutMs), dispatcher: this.reads });
  }

  /**
   * A write (POST, PUT, DELETE) with a JSON body; answers the status and the
   * parsed reply. Another Marathon is tried only when this one cannot be
   * reached: an answered write is never sent twice.
   */
  async send(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const url = `${this.endpoint.baseUrl}${path}`;
      let res: Response;
      try {
        res = await this.fetch(url, {
          method,
          headers: { ...this.headers('application/json'), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        lastError = err;
        this.failover();
        continue;
      }
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? null : (JSON.parse(text) as unknown);
      } catch {
        // keep the text: Marathon's errors are sometimes plain
      }
      return { status: res.status, body: parsed };
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** One app with its tasks; null when Marathon has no such app (it was removed). */
  async fetchApp(appId: string): Promise<unknown | null> {
    return this.getJson(`${appPath(appId)}?embed=app.tasks`, null);
  }
}

const MAX_REDIRECTIONS = 5;

function isOk(status: number): boolean {
  return status >= 200 && status < 300;
}

/** `/v2/apps/<id>` with each segment of the app id escaped; throws for an id that names no app. */
export function appPath(appId: string): string {
  const segments = appIdSegments(appId);
  if (segments === null) throw new Error(`${JSON.stringify(appId)} is not a Marathon app id`);
  return `/v2/apps/${segments.map(encodeURIComponent).join('/')}`;
}

function sameHostPort(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    return x.hostname === y.hostname && (x.port || defaultPort(x)) === (y.port || defaultPort(y));
  } catch {
    return false;
  }
}

function defaultPort(url: URL): string {
  return url.protocol === 'https:' ? '443' : '80';
}

