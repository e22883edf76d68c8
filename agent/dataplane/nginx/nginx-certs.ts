/** The plugin's certificate endpoint: `/edgeroute/certs` on the admin listener. */
import type { CertSetBody, CertTarget } from '../../certs/cert-set.js';

export class NginxCerts implements CertTarget {
  readonly label = 'nginx';

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** The version of the set nginx holds; null when it holds none (a fresh nginx without a snapshot). */
  async version(): Promise<string | null> {
    const res = await fetch(`${this.baseUrl}/edgeroute/certs`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`nginx admin certs answered HTTP ${res.status}`);
    const body = (await res.json()) as { version?: unknown };
    return typeof body.version === 'string' ? body.version : null;
  }

  async replace(set: CertSetBody): Promise<void> {
    const res = await fetch(`${this.baseUrl}/edgeroute/certs`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(set),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (res.ok) return;
    let error = text.trim().slice(0, 300);
    try {
      error = String((JSON.parse(text) as { error?: unknown }).error ?? error);
    } catch {
      // keep the raw text: the plugin's answers never hold the body it was sent
    }
    throw new Error(`nginx refused the certificates: HTTP ${res.status}: ${error}`);
  }
}
