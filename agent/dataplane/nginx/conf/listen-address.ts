/** Parses the listen addresses that `nginx-conf` accepts. */

export interface ListenAddress {
  /** The text after nginx's `listen` directive. */
  readonly directive: string;
  readonly loopbackOnly: boolean;
}

/** Accepts `PORT`, `HOST:PORT`, `[IPv6]:PORT` and `unix:/path`. */
export function parseListen(raw: string): ListenAddress {
  const text = raw.trim();
  if (text.startsWith('unix:')) {
    if (text.length <= 'unix:'.length) throw new Error(`listen address "${raw}" names no socket path`);
    return { directive: text, loopbackOnly: true };
  }
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new Error(`listen address "${raw}" is not PORT, HOST:PORT, [IPv6]:PORT or unix:/path`);
  }
  const host = match[1];
  const loopbackOnly = host !== undefined && (host === 'localhost' || host.startsWith('127.') || host === '[::1]');
  return { directive: host === undefined ? String(port) : `${host}:${port}`, loopbackOnly };
}
