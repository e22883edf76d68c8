/**
 * An app's edgeroute.tcpPort that another process on the node already
 * listens on: one warning naming the app, the port and who listens.
 *
 * - Outside what HAProxy binds (no --tcp-ports, or outside the range): any
 *   listener on the port is another process's (HAProxy's own HTTP listeners
 *   included: a TCP frontend cannot share them). HAProxy could not bind it,
 *   so the port is not routed.
 * - Inside the range: HAProxy binds every port of the range on the same
 *   addresses, so the listeners found on each of them are HAProxy's; any
 *   more on this port (another address, or a socket sharing it through
 *   SO_REUSEPORT) are another process's, which takes some of the
 *   connections. The port stays routed.
 *
 * - Bound to one address (edgeroute.tcpBind) and not yet listened on by
 *   HAProxy: a listener of another process on that address or on every
 *   address, at that port, keeps HAProxy from binding it: not routed.
 *   HAProxy's own ADDRESS/PORT listeners are left out of every count.
 *
 * The listeners come from the kernel's tables (/proc/net/tcp, tcp6: the
 * agent's network namespace, HAProxy's when they share the host), read
 * asynchronously before the adapter places TCP apps (at once for a port not
 * checked before, else at most every few seconds: a process that starts
 * listening on a routed port is noticed at the next change after that); who
 * holds a socket is named when /proc lets the agent see it.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { bindKey, parseBindKey } from './tcp-binds.js';
import { describeTcpBind } from '../../core/tcp-bind.js';

export interface Listener {
  /** The local address, as `ss` prints it: 127.0.0.1, [::1], * for any. */
  readonly address: string;
  readonly port: number;
  readonly inode: number;
}

const LISTEN = '0A';

/** /proc/net/tcp or /proc/net/tcp6 → its listening sockets. */
export function parseProcNetTcp(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [hexAddress, hexPort] = f[1]!.split(':') as [string, string];
    out.push({ address: decodeAddress(hexAddress), port: parseInt(hexPort, 16), inode: Number(f[9]) });
  }
  return out;
}

/** The kernel prints each 32-bit word of the address in host (little-endian) order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.every((b) => b === 0)) return '*';
  if (bytes.length === 4) return bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  // ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return bytes.slice(12).join('.');
  // The URL parser writes IPv6 addresses in their canonical short form.
  return new URL(`http://[${groups.join(':')}]/`).hostname;
}

/**
 * Listeners on `port` that are not HAProxy's. `range`: the ports HAProxy
 * binds for TCP apps; inside it, HAProxy's are those found on every other
 * port of the range (each address as many times as on the port that has it
 * least), outside it none.
 */
export function otherListeners(listeners: readonly Listener[], port: number, range: { from: number; to: number } | null): Listener[] {
  const onPort = listeners.filter((l) => l.port === port);
  if (onPort.length === 0 || range === null || port < range.from || port > range.to) return onPort;
  const counts = new Map<number, Map<string, number>>();
  for (const l of listeners) {
    if (l.port < range.from || l.port > range.to) continue;
    const byAddress = counts.get(l.port) ?? new Map<string, number>();
    byAddress.set(l.address, (byAddress.get(l.address) ?? 0) + 1);
    counts.set(l.port, byAddress);
  }
  const others = [...counts.keys()].filter((p) => p !== port);
  const size = range.to - range.from + 1;
  // A port of the range nobody listens on: HAProxy's listeners are not in view (another network namespace), so nothing can be told.
  if (others.length < size - 1) return [];
  const haproxys = new Map<string, number>();
  for (const address of new Set(onPort.map((l) => l.address))) {
    // A one-port range has nothing to compare with: one socket per address is HAProxy's.
    haproxys.set(address, size === 1 ? 1 : Math.min(...others.map((p) => counts.get(p)!.get(address) ?? 0)));
  }
  const out: Listener[] = [];
  for (const l of onPort) {
    const left = haproxys.get(l.address) ?? 0;
    if (left > 0) haproxys.set(l.address, left - 1);
    else out.push(l);
  }
  return out;
}

export async function readListeners(procNet = '/proc/net'): Promise<Listener[]> {
  const texts = await Promise.all(['tcp', 'tcp6'].map((f) => readFile(`${procNet}/${f}`, 'utf8').catch(() => '')));
  return texts.flatMap(parseProcNetTcp);
}

/** Socket inode → "pid NAME", for the processes whose file descriptors the agent may read. */
export async function socketOwners(inodes: ReadonlySet<number>, proc = '/proc'): Promise<Map<number, string>> {
  const owners = new Map<number, string>();
  if (inodes.size === 0) return owners;
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => ''));
      if (!m || !inodes.has(Number(m[1])) || owners.has(Number(m[1]))) continue;
      const name = (await readFile(`${proc}/${pid}/comm`, 'utf8').catch(() => '')).trim();
      owners.set(Number(m[1]), `pid ${pid}${name ? ` ${name}` : ''}`);
    }
    if (owners.size === inodes.size) break;
  }
  return owners;
}

export interface PortClashOptions {
  /** How long a reading of the listeners is reused. */
  readonly maxAgeMs?: number;
  readonly read?: () => Promise<Listener[]>;
  readonly owners?: (inodes: ReadonlySet<number>) => Promise<Map<number, string>>;
}

/** What the adapter asks before routing an app's TCP port; warns once per app, port and holders. */
export class PortClashes {
  private listeners: Listener[] = [];
  private readAt = -Infinity;
  private range: { from: number; to: number } | null = null;
  /** Port → who else listens on it (described), for the ports of the last refresh. */
  private held = new Map<number, string>();
  /** ADDRESS/PORT → who else listens there (described), for the bound ports of the last refresh. */
  private heldAt = new Map<string, string>();
  /** The ports of the last refresh. */
  private checked: ReadonlySet<number> = new Set();
  private readonly warned = new Map<string, string>();
  /** Socket inode → its process, null when it cannot be seen. */
  private readonly owners = new Map<number, string | null>();

  constructor(
    private readonly log: Logger,
    private readonly opts: PortClashOptions = {},
  ) {}

  /**
   * Reads the listeners (when the last reading is old) for these TCP ports
   * and what HAProxy binds: its range, and `bound`'s ADDRESS/PORT listeners
   * (its own, left out); `at`: ADDRESS/PORT of address-bound apps.
   */
  async refresh(ports: Iterable<number>, range: { from: number; to: number } | null, bound: { readonly own?: Iterable<string>; readonly at?: Iterable<string> } = {}): Promise<void> {
    const portList = [...new Set(ports)];
    const at = [...new Set(bound.at ?? [])].flatMap((k) => parseBindKey(k) ?? []);
    const wanted = new Set([...portList, ...at.map((b) => b.port)]);
    if (wanted.size === 0) {
      this.held.clear();
      this.heldAt.clear();
      return;
    }
    // A port not checked before (a new TCP app) is checked against a fresh reading.
    const fresh = [...wanted].some((port) => !this.checked.has(port));
    this.checked = wanted;
    if (fresh || Date.now() - this.readAt >= (this.opts.maxAgeMs ?? 5_000) || !sameRange(range, this.range)) {
      this.listeners = await (this.opts.read ?? readListeners)().catch(() => [] as Listener[]);
      this.readAt = Date.now();
    }
    this.range = range;
    const own = new Set([...(bound.own ?? [])].flatMap((k) => parseBindKey(k) ?? []).map((b) => ssKey(b.address, b.port)));
    const listeners = own.size === 0 ? this.listeners : this.listeners.filter((l) => !own.has(`${l.address}/${l.port}`));
    const clashes = new Map<number, Listener[]>();
    for (const port of portList) {
      const others = otherListeners(listeners, port, range);
      if (others.length > 0) clashes.set(port, others);
    }
    const clashesAt = new Map<string, Listener[]>();
    for (const { address, port } of at) {
      const others = listeners.filter((l) => l.port === port && (l.address === '*' || `${l.address}/${l.port}` === ssKey(address, port)));
      if (others.length > 0) clashesAt.set(bindKey(address, port), others);
    }
    // Who holds a socket is looked up once per socket (a walk of /proc).
    const unknown = new Set([...clashes.values(), ...clashesAt.values()].flat().map((l) => l.inode).filter((i) => !this.owners.has(i)));
    if (unknown.size > 0) {
      const found = await (this.opts.owners ?? socketOwners)(unknown).catch(() => new Map<number, string>());
      for (const inode of unknown) this.owners.set(inode, found.get(inode) ?? null);
    }
    const owners = this.owners;
    const describe = (others: Listener[]) => others.map((l) => `${l.address}:${l.port}${owners.get(l.inode) ? ` (${owners.get(l.inode)})` : ''}`).join(', ');
    this.held = new Map([...clashes].map(([port, others]) => [port, describe(others)]));
    this.heldAt = new Map([...clashesAt].map(([key, others]) => [key, describe(others)]));
  }

  /**
   * The app's port is bound to one address HAProxy does not listen on yet:
   * true (and one warning) when another process listens there or on every
   * address, so HAProxy cannot take it.
   */
  takenAt(app: string, address: string, port: number): boolean {
    const holders = this.heldAt.get(bindKey(address, port));
    if (holders === undefined) {
      this.forget(app);
      return false;
    }
    const where = describeTcpBind(address, port);
    this.warnOnce(app, port, holders, `app ${app} asks for TCP port ${where} (edgeroute.tcpBind), but another process on this node already listens there (${holders}): the port is not routed on this node`);
    return true;
  }

  /**
   * The app's port is outside what HAProxy binds: true (and one warning)
   * when another process listens on it, so HAProxy cannot take it.
   */
  taken(app: string, port: number): boolean {
    const holders = this.held.get(port);
    if (holders === undefined) {
      this.forget(app);
      return false;
    }
    this.warnOnce(app, port, holders, `app ${app} asks for TCP port ${port} (edgeroute.tcpPort), but another process on this node already listens on it (${holders}): the port is not routed on this node`);
    return true;
  }

  /**
   * The app's port is routed (HAProxy binds it): one warning when another
   * process listens on it too. Only ports of the range are told apart;
   * others HAProxy binds (added by a reload) are not checked.
   */
  routed(app: string, port: number, range: { from: number; to: number } | null): void {
    const holders = range !== null && port >= range.from && port <= range.to ? this.held.get(port) : undefined;
    if (holders === undefined) this.forget(app);
    else this.warnOnce(app, port, holders, `app ${app}'s TCP port ${port} (edgeroute.tcpPort) is also listened on by another process on this node (${holders}): connections it accepts do not reach the app`);
  }

  forget(app: string): void {
    this.warned.delete(app);
  }

  private warnOnce(app: string, port: number, holders: string, message: string): void {
    const said = `${port} ${holders}`;
    if (this.warned.get(app) === said) return;
    this.warned.set(app, said);
    this.log.warn({ app, tcpPort: port, listeners: holders }, message);
  }
}

/** A listener's ADDRESS/PORT as /proc/net/tcp is read (ss notation: [IPv6]). */
function ssKey(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}/${port}`;
}

function sameRange(a: { from: number; to: number } | null, b: { from: number; to: number } | null): boolean {
  return a === b || (a !== null && b !== null && a.from === b.from && a.to === b.to);
}
