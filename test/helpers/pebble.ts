/**
 * Debian's `pebble` (Let's Encrypt's ACME test server) and
 * `pebble-challtestsrv` (its mock DNS) on loopback, for the ACME tests.
 * Pebble validates HTTP-01 on `httpPort` of the address the mock DNS gives
 * for the name: 127.0.0.1 unless `resolve()` says otherwise.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from '../../agent/sandbox/child-process.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { waitFor } from '../../agent/sandbox/wait.js';

export interface PebbleOptions {
  /** The port pebble fetches http://NAME:PORT/.well-known/acme-challenge/ on. */
  readonly httpPort: number;
  /** Certificate lifetime, seconds (pebble's certificateValidityPeriod; its default is 5 years). */
  readonly validitySeconds?: number;
  /** Names pebble refuses to order (rejectedIdentifier). */
  readonly blocked?: readonly string[];
}

export interface Pebble {
  /** https://127.0.0.1:PORT/dir */
  readonly directory: string;
  /** The CA file of the directory's own HTTPS certificate (--acme-ca). */
  readonly caFile: string;
  readonly pid: number;
  /** The mock DNS answers `name` with `address` (A record) from now on. */
  resolve(name: string, address: string): Promise<void>;
  /** Everything pebble logged. */
  output(): string;
  stop(): Promise<void>;
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-pebble-'));
  const cert = join(dir, 'pebble.crt');
  const key = join(dir, 'pebble.key');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=pebble', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '2']);
  const [listenPort, managementPort, tlsPort, dnsPort, challtestPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listenPort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: opts.httpPort,
        // Unused (HTTP-01 only), but pebble needs one.
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.blocked ? { domainBlocklist: opts.blocked } : {}),
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }),
  );
  let output = '';
  const collect = (child: ResultPromise) => child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const dns: ResultPromise = execa(
    'pebble-challtestsrv',
    ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestPort}`],
    { reject: false, all: true, buffer: false },
  );
  collect(dns);
  const pebble: ResultPromise = execa('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
    reject: false,
    all: true,
    buffer: false,
    // No random sleep before validation, no random nonce rejections, no reused authorizations: every order validates.
    env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  collect(pebble);
  const stop = async () => {
    await stopChild(pebble);
    await stopChild(dns);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const management = `http://127.0.0.1:${challtestPort}`;
    await waitFor('pebble and its DNS', () => (output.includes('Listening on: 127.0.0.1') && output.includes(`Starting management server on 127.0.0.1:${challtestPort}`) ? true : undefined), 15_000, 50);
    return {
      directory: `https://127.0.0.1:${listenPort}/dir`,
      caFile: cert,
      pid: pebble.pid ?? 0,
      async resolve(name, address) {
        // /add-a adds to the name's addresses: clear them first.
        const cleared = await fetch(`${management}/clear-a`, { method: 'POST', body: JSON.stringify({ host: name }) });
        if (!cleared.ok) throw new Error(`pebble-challtestsrv /clear-a answered ${cleared.status}`);
        const res = await fetch(`${management}/add-a`, { method: 'POST', body: JSON.stringify({ host: name, addresses: [address] }) });
        if (!res.ok) throw new Error(`pebble-challtestsrv /add-a answered ${res.status}`);
      },
      output: () => output,
      stop,
    };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output}`);
  }
}
