/**
 * Marathon's REST API across several Marathon URLs: it sticks to the one that
 * answered last and moves on to the next when that one fails.
 */

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

export class MarathonClient {
  private current = 0;

  constructor(
    private readonly endpoints: readonly MarathonEndpoint[],
    private readonly timeoutMs = 10_000,
  ) {}

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

  /** `GET path` as JSON, trying each Marathon once, starting with the current one. */
  async getJson(path: string): Promise<unknown> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const url = `${this.endpoint.baseUrl}${path}`;
      try {
        const res = await fetch(url, { headers: this.headers('application/json'), signal: AbortSignal.timeout(this.timeoutMs) });
        if (!res.ok) throw new MarathonHttpError(url, res.status);
        const text = await res.text();
        try {
          return JSON.parse(text) as unknown;
        } catch (err) {
          throw new Error(`GET ${url} answered malformed JSON: ${(err as Error).message}`);
        }
      } catch (err) {
        lastError = err;
        this.failover();
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  fetchApps(): Promise<unknown> {
    return this.getJson('/v2/apps?embed=apps.tasks');
  }
}
