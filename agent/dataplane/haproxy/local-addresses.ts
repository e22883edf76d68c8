/**
 * Whether this node has an address an app's TCP port is bound to
 * (edgeroute.tcpBind): HAProxy cannot listen on an address the node does not
 * have, and a reload that tried would fail for every app that waits. Told
 * the way HAProxy would find out, by binding a socket to ADDRESS:0 (so
 * 127.0.0.2 counts on Linux, whose loopback takes all of 127.0.0.0/8, and so
 * does net.ipv4.ip_nonlocal_bind): EADDRNOTAVAIL means not the node's. The
 * agent shares HAProxy's network namespace, as for port-clashes.ts. Checked
 * at once for a new address, else at most every few seconds: an address
 * added to the node later is noticed at the next change after that.
 */
import { createServer } from 'node:net';

export interface LocalAddressOptions {
  /** How long a verdict is reused. */
  readonly maxAgeMs?: number;
  /** true: the node has it (for tests). */
  readonly probe?: (address: string) => Promise<boolean>;
}

export class LocalAddresses {
  private readonly known = new Map<string, { readonly has: boolean; readonly at: number }>();

  constructor(private readonly opts: LocalAddressOptions = {}) {}

  /** Looks at these addresses (those not looked at lately); forgets the others. */
  async refresh(addresses: Iterable<string>): Promise<void> {
    const wanted = new Set(addresses);
    for (const address of this.known.keys()) if (!wanted.has(address)) this.known.delete(address);
    const now = Date.now();
    const stale = [...wanted].filter((a) => now - (this.known.get(a)?.at ?? -Infinity) >= (this.opts.maxAgeMs ?? 5_000));
    const verdicts = await Promise.all(stale.map((a) => (this.opts.probe ?? canBind)(a)));
    stale.forEach((address, i) => this.known.set(address, { has: verdicts[i]!, at: now }));
  }

  /** Whether the node has the address; true for one not looked at (HAProxy then tells). */
  has(address: string): boolean {
    return this.known.get(address)?.has ?? true;
  }
}

/** Binds a TCP socket to address:0; false only when the address is not the node's. */
export function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRNOTAVAIL' && err.code !== 'EAFNOSUPPORT'));
    server.listen({ host: address, port: 0, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
