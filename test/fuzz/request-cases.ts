/**
 * Fuzzed HTTP requests, as bytes on a socket (Node's HTTP client would
 * refuse to send most of them): request lines and headers near and past
 * nginx's large_client_header_buffers (4 × 8 KiB by default, and the
 * template sets nothing else), thousands of headers, odd bytes in Host,
 * Cookie and X-Forwarded-For, and a client-sent X-Edgeroute-Version, which
 * must never reach a backend.
 */
import type { Rng } from './prng.js';

/** nginx's default large_client_header_buffers: 4 buffers of 8 KiB; a request line or one header must fit one. */
export const HEADER_BUFFER_BYTES = 8 * 1024;
export const HEADER_BUFFERS = 4;

export interface RequestCase {
  readonly bytes: Buffer;
  /** Host header values sent (none, one, or several). */
  readonly hosts: readonly string[];
  /** X-Edgeroute-Version values the client sent, whatever the header's spelling. */
  readonly spoofedVersions: readonly string[];
  /** The request asks for the header echo and may reach a backend. */
  readonly echo: boolean;
  readonly head: boolean;
  readonly notes: readonly string[];
}

/** Bytes from 0 to 255 as a latin1 string: every header byte is possible. */
function oddBytes(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out += String.fromCharCode(rng.weighted<number>([
      [6, rng.between(0x21, 0x7e)],
      [1, rng.pick([0x00, 0x01, 0x09, 0x0b, 0x0c, 0x1b, 0x7f, 0x20])],
      [2, rng.between(0x80, 0xff)],
    ]));
  }
  return out;
}

/** A label-like run of `length` characters with dots now and then. */
function hostOfLength(length: number, dotEvery = 60): string {
  let out = '';
  while (out.length < length) out += out.length % (dotEvery + 1) === dotEvery ? '.' : 'h';
  return `${out.slice(0, Math.max(0, length - 5))}.fuzz`;
}

export function generateRequestCase(rng: Rng, hosts: { good: string; shop: string }, mark: string): RequestCase {
  const notes: string[] = [];
  const note = (text: string) => notes.push(text);

  const method = rng.weighted<() => string>([
    [20, () => 'GET'],
    [2, () => 'POST'],
    [1, () => 'HEAD'],
    [1, () => rng.pick(['PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND', 'FOO', 'get', 'G\u0000T', 'M'.repeat(rng.pick([32, 8_000])), 'TRACE', 'CONNECT'])],
  ])();
  if (method !== 'GET') note(`method ${JSON.stringify(method.slice(0, 20))}`);

  let target = rng.weighted<() => string>([
    [20, () => '/headers'],
    [2, () => `/headers?${rng.pick(['a=1', 'x=%00', 'q=%ff%fe', '=&&=', 'a'.repeat(100)])}`],
    [1, () => '/'],
    [1, () => rng.pick(['/headers/../headers', '//headers', '/%2e%2e/', '/headers#frag', '/\u00e9', '/%', '/%zz', '*', 'http://good.fuzz/headers', 'http://unknown.fuzz/headers', 'https://shop.fuzz/headers'])],
    [1, () => `/${oddBytes(rng, rng.between(1, 40)).replace(/[ \r\n]/g, '_')}`],
  ])();
  // Request lines around one 8 KiB buffer: below, at, just past, far past.
  if (rng.chance(0.12)) {
    const want = rng.pick([1_000, 4_000, HEADER_BUFFER_BYTES - 40, HEADER_BUFFER_BYTES - 16, HEADER_BUFFER_BYTES, HEADER_BUFFER_BYTES + 100, 16_000, 40_000]);
    target = `/headers?pad=${'p'.repeat(Math.max(0, want - 30))}`;
    note(`request line ~${want} bytes`);
  }
  const version = rng.weighted<() => string | null>([
    [30, () => 'HTTP/1.1'],
    [3, () => 'HTTP/1.0'],
    [1, () => rng.pick([null, 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1x', 'http/1.1', 'HTTP/1.01', 'HTTP/01.1', 'HTTP/1.1 extra'])],
  ])();
  if (version !== 'HTTP/1.1') note(`version ${version}`);

  const headers: Array<[string, string]> = [];
  const hostValues: string[] = [];
  const hostChoice = rng.weighted<() => string[]>([
    [12, () => [hosts.good]],
    [8, () => [hosts.shop]],
    [2, () => [rng.pick(['unknown.fuzz', 'fuzz', '', '127.0.0.1', '[::1]', 'GOOD.FUZZ', `${hosts.good}.`, `${hosts.good}:80`, `${hosts.good}:99999`, `x.${hosts.good}`, 'a..b', `${hosts.good}/x`, `${hosts.good}\\x`, `user@${hosts.good}`, 'éé.fuzz'])]],
    [1, () => [hostOfLength(rng.pick([253, 254, 1_000, 4_000, 8_100, 9_000]), rng.pick([1, 2, 60]))]],
    [1, () => [oddBytes(rng, rng.between(1, 64))]],
    [1, () => [hosts.good, hosts.shop]],
    [1, () => []],
  ])();
  for (const host of hostChoice) {
    headers.push([rng.pick(['Host', 'host', 'HOST']), host]);
    hostValues.push(host);
  }
  if (hostChoice.length !== 1 || (hostChoice[0] !== hosts.good && hostChoice[0] !== hosts.shop)) note(`host ${JSON.stringify(hostChoice.map((h) => h.slice(0, 40)))}`);

  // The header that must never reach a backend as the client wrote it.
  const spoofed: string[] = [];
  if (rng.chance(0.5)) {
    const count = rng.weighted<number>([[6, 1], [1, 2], [1, 5]]);
    for (let i = 0; i < count; i++) {
      const name = rng.pick(['X-Edgeroute-Version', 'x-edgeroute-version', 'X-EDGEROUTE-VERSION', 'X-Edgeroute-version']);
      const value = rng.pick(['grey', 'stable', 'evil', '', 'grey, stable', ' grey ', 'v'.repeat(rng.pick([100, 7_000])), oddBytes(rng, 12).replace(/[\r\n\u0000]/g, '')]);
      headers.push([name, value]);
      spoofed.push(value);
    }
    note(`${count} spoofed X-Edgeroute-Version`);
  }
  if (rng.chance(0.1)) {
    headers.push([rng.pick(['X_Edgeroute_Version', 'X-Edgeroute-Version ', ' X-Edgeroute-Version', 'X-Edgeroute-Version\t']), 'evil']);
    note('an invalid spelling of X-Edgeroute-Version');
  }
  if (rng.chance(0.3)) headers.push(['X-Fuzz-Mark', mark]);

  const extra = rng.weighted<() => string>([
    [10, () => 'none'],
    [2, () => 'cookie'],
    [2, () => 'xff'],
    [1, () => 'many'],
    [1, () => 'long'],
    [1, () => 'odd'],
    [1, () => 'total'],
  ])();
  switch (extra) {
    case 'cookie': {
      const size = rng.pick([100, 4_000, HEADER_BUFFER_BYTES - 20, HEADER_BUFFER_BYTES, HEADER_BUFFER_BYTES + 10, 20_000]);
      const cookie = rng.chance(0.5) ? `uid=${'c'.repeat(size)}` : Array.from({ length: Math.ceil(size / 8) }, (_, i) => `c${i}=v`).join('; ').slice(0, size);
      headers.push(['Cookie', cookie]);
      if (rng.chance(0.3)) headers.push(['Cookie', `grey=1; ${oddBytes(rng, 20).replace(/[\r\n]/g, '')}`]);
      note(`cookie of ${cookie.length} bytes`);
      break;
    }
    case 'xff': {
      const value = rng.pick([
        Array.from({ length: rng.pick([10, 500, 2_000]) }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`).join(', '),
        'garbage, , ,::::,999.999.999.999',
        'unknown',
        oddBytes(rng, 50).replace(/[\r\n]/g, ''),
        '2001:db8::1, 127.0.0.1',
      ]);
      headers.push(['X-Forwarded-For', value]);
      note(`X-Forwarded-For of ${value.length} bytes`);
      break;
    }
    case 'many': {
      const count = rng.pick([100, 1_000, 3_000, 10_000]);
      for (let i = 0; i < count; i++) headers.push([`X-Many-${i}`, 'v']);
      note(`${count} headers`);
      break;
    }
    case 'long': {
      // One header line at the edge of an 8 KiB buffer (name, ": ", value, CRLF).
      const line = rng.pick([HEADER_BUFFER_BYTES - 100, HEADER_BUFFER_BYTES - 2, HEADER_BUFFER_BYTES, HEADER_BUFFER_BYTES + 1, HEADER_BUFFER_BYTES * 2]);
      headers.push(['X-Long', 'l'.repeat(line - 'X-Long: \r\n'.length)]);
      note(`one header line of ${line} bytes`);
      break;
    }
    case 'odd': {
      const kind = rng.pick(['nul', 'bare-lf', 'no-colon', 'fold', 'bad-name', 'high-bytes', 'empty-name', 'space-name']);
      if (kind === 'nul') headers.push(['X-Odd', `a\u0000b`]);
      else if (kind === 'bare-lf') headers.push(['X-Odd', 'a\nX-Injected: 1']);
      else if (kind === 'no-colon') headers.push(['X-Odd-No-Colon', '\u0000NOCOLON']);
      else if (kind === 'fold') headers.push(['X-Odd', 'a\r\n folded']);
      else if (kind === 'bad-name') headers.push([`X-${oddBytes(rng, 6).replace(/[\r\n: ]/g, '')}`, 'v']);
      else if (kind === 'high-bytes') headers.push(['X-Odd', oddBytes(rng, 64).replace(/[\r\n]/g, '')]);
      else if (kind === 'empty-name') headers.push(['', 'v']);
      else headers.push(['X Odd', 'v']);
      note(`odd header: ${kind}`);
      break;
    }
    case 'total': {
      // Headers that each fit a buffer but together fill all four, or more.
      const total = rng.pick([HEADER_BUFFER_BYTES * HEADER_BUFFERS - 2_000, HEADER_BUFFER_BYTES * HEADER_BUFFERS + 2_000, 100_000]);
      for (let i = 0; i * 4_000 < total; i++) headers.push([`X-Fill-${i}`, 'f'.repeat(3_980)]);
      note(`~${total} bytes of headers`);
      break;
    }
  }

  let body = '';
  if (method === 'POST' || method === 'PUT') {
    const kind = rng.pick(['length', 'chunked', 'both', 'bad-length', 'shorter']);
    body = rng.pick(['x=1', '', 'b'.repeat(10_000)]);
    // Never less than declared: nginx would wait for the rest until client_body_timeout.
    if (kind === 'shorter' && body.length < 2) body = 'x=1';
    if (kind === 'length') headers.push(['Content-Length', String(Buffer.byteLength(body))]);
    else if (kind === 'chunked') {
      headers.push(['Transfer-Encoding', 'chunked']);
      body = `${body.length > 0 ? `${body.length.toString(16)}\r\n${body}\r\n` : ''}0\r\n\r\n`;
    } else if (kind === 'both') {
      headers.push(['Transfer-Encoding', 'chunked'], ['Content-Length', '3']);
      body = '3\r\nx=1\r\n0\r\n\r\n';
    } else if (kind === 'bad-length') headers.push(['Content-Length', rng.pick(['abc', '-1', '1e3', '99999999999999999999', '3, 3'])]);
    else {
      // Declares less than it sends: the rest would be the next request, on a connection that closes.
      headers.push(['Content-Length', '1']);
    }
    note(`body: ${kind}`);
  }
  if (version !== null) headers.push(['Connection', 'close']);

  const lineEnd = rng.chance(0.03) ? '\n' : '\r\n';
  if (lineEnd === '\n') note('bare LF line ends');
  const requestLine = version === null ? `${method} ${target}` : `${method} ${target} ${version}`;
  const head = version === null ? `${requestLine}${lineEnd}` : `${requestLine}${lineEnd}${headers.map(([name, value]) => `${name}: ${value}`).join(lineEnd)}${lineEnd}${lineEnd}`;
  return {
    bytes: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(version === null ? '' : body, 'latin1')]),
    hosts: hostValues,
    spoofedVersions: spoofed,
    echo: target.includes('/headers') && method !== 'HEAD',
    head: method === 'HEAD',
    notes,
  };
}

/** Prefixes of the shared host's apps, near misses of them, and nothing. */
const PATH_STARTS = ['', '/api', '/api/admin', '/v1/api', '/static', '/a.b', '/s;p', '/~u', '/...', '/apix', '/api2', '/stat', '/API', '/v1', '/a', '/s', '/%61pi', '/ap%69', '/%2e%2e', '/api%2fadmin', '/api%2Fadmin', '/st%61tic', '/a%2eb', '/%7Eu', '/s%3bp', '/v1%2fapi'];
/** Segments that mean something else decoded, or to nginx's normalization. */
const PATH_SEGMENTS = [
  'x', 'headers', 'admin', 'api', 'static', 'v1', '.', '..', '...', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%2f', '%2F', '', 'a%2fb', '%2f..%2f',
  '%61pi', '%252e%252e', '%25', '%c3%a9', '\u00c3\u00a9', '%20', '+', '~', 'x;y=1', ';', ';jsessionid=1', 'x.', 'x..', '.x', '..x', '%3f', '%23', '%3B', 'a%00b',
  '%0a', '%0d', '%09', '%7f', '%01', '%ff', '%', '%z', '%2', '%%', '\\', '..\\..', 'a"b', '{x}', '|', '^', '`', '!$&\'()*+,=:@', '%5c', '%2e%2e%5c', '@', 'headers%3fq',
];

/**
 * A request for the shared host with a crafted path: dot segments, escaped
 * dots and slashes, empty segments, escaped letters, ";" parameters, a query
 * with escapes of its own, very long ones. The target is returned so the
 * runner can predict the app and the path its backend receives.
 */
export function generatePathCase(rng: Rng, host: string): RequestCase & { readonly target: string } {
  const notes: string[] = [];
  let path = rng.pick(PATH_STARTS);
  const count = rng.weighted<number>([[4, rng.between(0, 3)], [3, rng.between(3, 8)], [1, rng.between(8, 30)]]);
  for (let i = 0; i < count; i++) path += `${rng.chance(0.08) ? '//' : '/'}${rng.pick(PATH_SEGMENTS)}`;
  if (path === '' || !path.startsWith('/')) path = `/${path}`;
  path += rng.weighted<string>([[8, ''], [2, '/'], [1, '.'], [1, '/.'], [1, '/..'], [1, '%2f'], [1, '%2e']]);
  if (rng.chance(0.05)) {
    // Long paths: near and past one 8 KiB header buffer (the request line must fit one).
    const want = rng.pick([2_000, 7_000, HEADER_BUFFER_BYTES - 60, HEADER_BUFFER_BYTES + 100]);
    const unit = rng.pick(['/x', '/.', '/..', '/%2e', '//', '/a/..', '/%61']);
    path += unit.repeat(Math.max(0, Math.ceil((want - path.length) / unit.length)));
    notes.push(`path of ${path.length} bytes`);
  }
  let query = '';
  if (rng.chance(0.3)) {
    query = `?${rng.pick(['a=1', 'q=%2e%2e/x&y=%2F', 'next=/api/../admin', 'x=%zz', '%', 'a?b=c?d', '', 'u=%c3%a9&v=\u00c3\u00a9', '../..', 'x=1;y=2', '//a//b', '%00'])}`;
  }
  const target = path + query;
  notes.push(`target ${JSON.stringify(target.slice(0, 120))}`);
  const method = rng.weighted<string>([[10, 'GET'], [1, 'HEAD'], [1, 'POST']]);
  const headers: Array<[string, string]> = [['Host', rng.pick([host, host.toUpperCase(), `${host}.`])]];
  if (method === 'POST') headers.push(['Content-Length', '3']);
  headers.push(['Connection', 'close']);
  const head = `${method} ${target} HTTP/1.1\r\n${headers.map(([name, value]) => `${name}: ${value}`).join('\r\n')}\r\n\r\n`;
  return {
    bytes: Buffer.from(head + (method === 'POST' ? 'x=1' : ''), 'latin1'),
    hosts: [host],
    spoofedVersions: [],
    echo: method !== 'HEAD',
    head: method === 'HEAD',
    notes,
    target,
  };
}
