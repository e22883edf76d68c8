/**
 * Which addresses and ports HAProxy's TCP frontend listens on, and whether a
 * connection to ADDRESS:PORT reaches it (edgeroute.tcpBind). Pure.
 *
 * The frontend binds the --tcp-ports range and the extra ports on each
 * --listen host, plus one listener per ADDRESS:PORT the agent added for
 * apps with edgeroute.tcpBind. It looks a connection up in tcp-ports.map by
 * `dst/dst_port` first (an app bound to that address), then by `dst_port`
 * (an app on every listen host): the map keys are "ADDRESS/PORT" and "PORT".
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The map key, and the text in TCP_BINDS_VAR, of an address-bound TCP port. */
export function bindKey(address: string, port: number): string {
  return `${address}/${port}`;
}

export function parseBindKey(key: string): { address: string; port: number } | null {
  const slash = key.lastIndexOf('/');
  const port = Number(key.slice(slash + 1));
  const address = key.slice(0, slash);
  if (slash <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535 || !(isIPv4(address) || isIPv6(address))) return null;
  return { address, port };
}

/** A bind line's host (`127.0.0.1`, `[::1]`, `` for every IPv4 address) as the hosts variable writes it: unbracketed, `*`, `::`. */
export function listenHost(bindHost: string): string {
  const host = bindHost.replace(/^\[(.*)\]$/, '$1');
  return host === '' || host === '*' || host === '0.0.0.0' ? '*' : host;
}

/** `get var`'s reply for a string variable: its value, or null when the variable is not set. */
export function parseStrVar(text: string): string | null {
  const m = /value=<([^>]*)>/.exec(text);
  return m ? (m[1] ?? '') : null;
}

/** What the TCP frontend listens on. */
export interface TcpListeners {
  /**
   * Its listen hosts (listenHost's form); null when its config predates
   * edgeroute.tcpBind: it looks connections up by port only, so an
   * address-bound app needs the re-render a reload brings.
   */
  readonly hosts: readonly string[] | null;
  readonly range: { readonly from: number; readonly to: number } | null;
  readonly extraPorts: ReadonlySet<number>;
  /** The ADDRESS/PORT listeners the agent added. */
  readonly binds: ReadonlySet<string>;
}

/**
 * Whether a connection to address:port reaches the TCP frontend with that
 * address as its destination: a listener of its own, or a listen host that
 * is that address or every address of its family with the port bound there.
 * An IPv4 address on a `[::]` host is not: a dual-stack socket's `dst` is
 * `::ffff:a.b.c.d`, which no map key matches.
 */
export function receives(listeners: TcpListeners, address: string, port: number): boolean {
  if (listeners.binds.has(bindKey(address, port))) return true;
  if (listeners.hosts === null) return false;
  const range = listeners.range;
  if (!((range !== null && port >= range.from && port <= range.to) || listeners.extraPorts.has(port))) return false;
  return listeners.hosts.some((host) => host === address || (host === '*' && isIPv4(address)) || (host === '::' && isIPv6(address)));
}

/** Whether HAProxy listens on the port on every address of a family (then a probe of one address there finds HAProxy's own socket). */
export function wildcardOn(listeners: TcpListeners, port: number): boolean {
  const range = listeners.range;
  const bound = (range !== null && port >= range.from && port <= range.to) || listeners.extraPorts.has(port);
  return bound && (listeners.hosts ?? []).some((host) => host === '*' || host === '::');
}
