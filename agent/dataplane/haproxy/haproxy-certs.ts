/**
 * Certificates by SNI on an HAProxy node, without a reload (HAProxy 2.6
 * runtime API). haproxy.cfg's TLS bind has `crt-list DIR/tls/certs.list`
 * (written empty by haproxy-conf) after its default certificate, which stays
 * the answer when no SNI filter matches. Each served certificate becomes an
 * in-memory certificate `DIR/tls/sni-<id>.pem`: `new ssl cert`, `set ssl
 * cert` with the chain and key as payload, `commit ssl cert`, then `add ssl
 * crt-list` with the names it serves as SNI filters (a name two files share
 * goes to one only). A replaced one is set and committed again; a removed
 * one leaves the crt-list, then the store.
 *
 * Keys travel over the admin socket only: nothing is written to disk, and
 * no reply or error quotes them. A reloaded or restarted HAProxy starts
 * with the empty list: version() reads what the worker holds, so the
 * watcher's next scan fills it again.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { CertSetBody, CertTarget } from '../../certs/cert-set.js';
import { HaproxyRuntime } from './runtime-client.js';

export const CERTS_LIST_FILE = 'certs.list';

const STORE_PREFIX = 'sni-';

export class HaproxyCerts implements CertTarget {
  readonly label = 'HAProxy';
  /** The set last applied whole, and its crt-list entries (store name → SNI filters). */
  private applied: { readonly version: string; readonly entries: ReadonlyMap<string, string> } | null = null;
  /** What each store name was last committed with: a digest of chain and key, in memory only. */
  private committed = new Map<string, string>();

  constructor(
    private readonly socket: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async version(): Promise<string | null> {
    const applied = this.applied;
    if (applied === null) return null;
    return this.session(async (runtime) => {
      const held = await crtListEntries(runtime, await findCertsList(runtime, this.socket));
      if (held.size !== applied.entries.size) return null;
      for (const [name, filters] of applied.entries) if (held.get(name) !== filters) return null;
      return applied.version;
    });
  }

  async replace(set: CertSetBody): Promise<void> {
    this.applied = null;
    await this.session(async (runtime) => {
      const list = await findCertsList(runtime, this.socket);
      const prefix = join(dirname(list), STORE_PREFIX);
      const stored = new Set((await runtime.one('show ssl cert')).split('\n').map((line) => line.replace(/^\*/, '').trim()).filter((name) => name.startsWith(prefix)));
      const held = await crtListEntries(runtime, list);
      const wanted = new Map(set.certs.map((cert) => [storeName(prefix, cert.id), cert]));

      for (const [name, cert] of wanted) {
        const digest = createHash('sha256').update(cert.cert_pem).update('\u0000').update(cert.key_pem).digest('hex');
        if (stored.has(name) && this.committed.get(name) === digest) continue;
        if (!stored.has(name)) expect(await runtime.one(`new ssl cert ${name}`), /New empty certificate store/, `new ssl cert ${name}`);
        this.committed.delete(name);
        expect(await runtime.withPayload(`set ssl cert ${name}`, `${cert.cert_pem}\n${cert.key_pem}`), /Transaction (created|updated)/, `set ssl cert ${name}`);
        expect(await runtime.one(`commit ssl cert ${name}`), /Success!/, `commit ssl cert ${name}`);
        this.committed.set(name, digest);
      }
      const entries = new Map<string, string>();
      for (const [name, cert] of wanted) {
        const filters = cert.names.join(' ');
        entries.set(name, filters);
        if (held.get(name) === filters) continue;
        if (held.has(name)) expect(await runtime.one(`del ssl crt-list ${list} ${name}`), /deleted/, `del ssl crt-list ${list} ${name}`);
        expect(await runtime.withPayload(`add ssl crt-list ${list}`, `${name} ${filters}`), /Success!/, `add ssl crt-list ${list} ${name}`);
      }
      for (const name of held.keys()) {
        if (!wanted.has(name)) expect(await runtime.one(`del ssl crt-list ${list} ${name}`), /deleted/, `del ssl crt-list ${list} ${name}`);
      }
      for (const name of stored) {
        if (wanted.has(name)) continue;
        expect(await runtime.one(`del ssl cert ${name}`), /deleted/, `del ssl cert ${name}`);
        this.committed.delete(name);
      }
      this.applied = { version: set.version, entries };
    });
  }

  /** A connection per round: an idle one would keep a worker left by a reload alive, and miss the new one. */
  private async session<T>(work: (runtime: HaproxyRuntime) => Promise<T>): Promise<T> {
    const runtime = new HaproxyRuntime(this.socket, this.timeoutMs);
    try {
      return await work(runtime);
    } finally {
      runtime.close();
    }
  }
}

/** A store name per certificate id, stable, of path characters only ("live/x" and "live_x" differ by the hash). */
function storeName(prefix: string, id: string): string {
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${prefix}${id.replace(/[^A-Za-z0-9._-]+/g, '_')}-${hash}.pem`;
}

/** The crt-list haproxy-conf wrote, as HAProxy names it (`show ssl crt-list` lists the loaded ones). */
async function findCertsList(runtime: HaproxyRuntime, socket: string): Promise<string> {
  const lists = (await runtime.one('show ssl crt-list')).split('\n').map((line) => line.trim());
  const list = lists.find((line) => line.endsWith(`/${CERTS_LIST_FILE}`));
  if (list === undefined) throw new Error(`HAProxy at ${socket} has no ${CERTS_LIST_FILE} crt-list: regenerate haproxy.cfg with this version of edgeroute haproxy-conf, with --tls-listen`);
  return list;
}

/** The crt-list's entries: certificate → its SNI filters, space-separated. */
async function crtListEntries(runtime: HaproxyRuntime, list: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  for (const line of (await runtime.one(`show ssl crt-list ${list}`)).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [name = '', ...filters] = line.trim().split(/\s+/);
    entries.set(name, filters.join(' '));
  }
  return entries;
}

/** HAProxy tells success by its reply's text only; its refusals quote no payload. */
function expect(reply: string, success: RegExp, what: string): void {
  if (!success.test(reply)) throw new Error(`HAProxy refused ${what}: ${reply.trim().replace(/\s+/g, ' ').slice(0, 300)}`);
}
