/** The plugin's ACME challenge endpoint: `/edgeroute/acme-challenges` on the admin listener. */

export class NginxAcmeChallenges {
  readonly label = 'nginx';

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Replaces the pending set: token → key authorization. */
  async replace(challenges: ReadonlyMap<string, string>): Promise<void> {
    const res = await fetch(`${this.baseUrl}/edgeroute/acme-challenges`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ challenges: Object.fromEntries(challenges) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (res.ok) return;
    if (res.status === 404) throw new Error('nginx has no /edgeroute/acme-challenges: regenerate nginx.conf with this version of edgeroute nginx-conf');
    throw new Error(`nginx refused the ACME challenges: HTTP ${res.status}: ${text.trim().slice(0, 300)}`);
  }
}
