/**
 * edgeroute.tcpBind: the one address an HAProxy node listens on for an app's
 * TCP port (marathon-lb's HAPROXY_{n}_BIND_ADDR, its service-port frontend's
 * `bind {bindAddr}:{servicePort}`), written the way HAProxy's `dst` prints
 * the destination of a connection, so the two compare as text. Pure.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Values that mean every address: the node's own TCP listen hosts (the default). */
const EVERY_ADDRESS = new Set(['', '*', '0.0.0.0', '::']);

export type TcpBindResult = { ok: true; address: string | null } | { ok: false; why: string };

/** An IPv4 or IPv6 address (canonical: IPv6 compressed and lower case, as inet_ntop writes it), or null for every address. */
export function parseTcpBind(raw: string): TcpBindResult {
  const text = raw.trim().replace(/^\[(.*)\]$/, '$1');
  if (EVERY_ADDRESS.has(text)) return { ok: true, address: null };
  if (isIPv4(text)) return { ok: true, address: text };
  // A zone (fe80::1%eth0) never shows in a connection's destination; an IPv4-mapped address is the IPv4 one.
  if (!isIPv6(text) || text.includes('%')) return { ok: false, why: 'is not an IPv4 or IPv6 address' };
  const address = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  if (/^::ffff:/.test(address)) return { ok: false, why: 'is an IPv4-mapped IPv6 address: write the IPv4 address' };
  return { ok: true, address };
}

/** ADDRESS:PORT as people and logs write it ([IPv6]:PORT). */
export function describeTcpBind(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}
