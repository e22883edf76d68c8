/** Self-signed certificates for tests, made with the openssl CLI (node's crypto cannot sign X.509). */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type DetailedPeerCertificate } from 'node:tls';

export interface TestCert {
  readonly cert: string;
  readonly key: string;
}

/**
 * Writes `<base>.crt` and `<base>.key` (or the paths given) for `names` (DNS
 * subjectAltNames; the first is also the CN). `expired`: valid for one day in 2020.
 */
export async function makeTestCert(opts: { names: readonly string[]; cert: string; key: string; expired?: boolean; days?: number }): Promise<TestCert> {
  const cn = opts.names[0] ?? 'edgeroute.test';
  const san = opts.names.map((name) => `DNS:${name}`).join(',');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (!opts.expired) {
    await execa('openssl', ['req', '-x509', ...ec, '-keyout', opts.key, '-out', opts.cert, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-days', String(opts.days ?? 30)]);
    return { cert: opts.cert, key: opts.key };
  }
  // `req -x509` takes no dates in OpenSSL 3.0; `ca -selfsign` does.
  const work = mkdtempSync(join(tmpdir(), 'edgeroute-ca-'));
  try {
    writeFileSync(join(work, 'index.txt'), '');
    writeFileSync(join(work, 'serial'), '01\n');
    writeFileSync(
      join(work, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test_ca',
        '[test_ca]',
        `database = ${join(work, 'index.txt')}`,
        `serial = ${join(work, 'serial')}`,
        `new_certs_dir = ${work}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '[ext]',
        `subjectAltName = ${san}`,
        '',
      ].join('\n'),
    );
    const csr = join(work, 'req.csr');
    await execa('openssl', ['req', '-new', ...ec, '-keyout', opts.key, '-out', csr, '-subj', `/CN=${cn}`]);
    await execa('openssl', ['ca', '-batch', '-config', join(work, 'ca.cnf'), '-selfsign', '-keyfile', opts.key, '-in', csr, '-out', opts.cert, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extensions', 'ext', '-notext']);
    return { cert: opts.cert, key: opts.key };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The certificate a TLS listener on `host:port` presents for `servername` (none: no SNI sent). */
export function peerCertificate(port: number, servername?: string, host = '127.0.0.1'): Promise<DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername, rejectUnauthorized: false, session: undefined }, () => {
      const cert = socket.getPeerCertificate(true);
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

/**
 * A run of a P-256 private key's base64 that only that key holds: its private
 * scalar. The first 48 characters are the same in every such key, and the last
 * ones are the public key, which its certificate holds too.
 */
export function privateKeyMarker(pem: string): string {
  return pem.split('\n').filter((line) => line && !line.startsWith('-----')).join('').slice(48, 88);
}

/**
 * The certificate folder of the SNI tests (nginx and HAProxy nodes): `a`
 * (a.test, www.a.test), `wild` (*.wild.test) and certbot's `live/cb.test`,
 * plus a default certificate outside it (`staticCert`, `staticKey`). `keys`
 * holds the private-key marker of every key in the folder, for the tests
 * that keys appear nowhere else; `add` writes one more pair into it.
 */
export interface CertFolder {
  readonly root: string;
  readonly dir: string;
  readonly staticCert: string;
  readonly staticKey: string;
  readonly keys: string[];
  add(name: string, names: readonly string[], opts?: { expired?: boolean; days?: number }): Promise<TestCert>;
  remove(): void;
}

export async function makeCertFolder(prefix: string): Promise<CertFolder> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const dir = join(root, 'certs');
  const staticDir = join(root, 'static');
  mkdirSync(dir);
  mkdirSync(staticDir);
  const keys: string[] = [];
  const remember = (made: TestCert) => {
    keys.push(privateKeyMarker(readFileSync(made.key, 'utf8')));
    return made;
  };
  const folder: CertFolder = {
    root,
    dir,
    staticCert: join(staticDir, 'static.crt'),
    staticKey: join(staticDir, 'static.key'),
    keys,
    add: async (name, names, opts = {}) => remember(await makeTestCert({ names, cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), ...opts })),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
  const live = join(dir, 'live', 'cb.test');
  mkdirSync(live, { recursive: true });
  await Promise.all([
    makeTestCert({ names: ['static.test'], cert: folder.staticCert, key: folder.staticKey }),
    folder.add('a', ['a.test', 'www.a.test']),
    folder.add('wild', ['*.wild.test']),
    makeTestCert({ names: ['cb.test'], cert: join(live, 'fullchain.pem'), key: join(live, 'privkey.pem') }).then(remember),
  ]);
  return folder;
}
