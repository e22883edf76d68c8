// The certificate indexer: which file serves which SNI name, and which files
// are refused and why, from real PEM made by openssl.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertSource } from '../../agent/certs/cert-files.js';
import { indexCertificates, withAcmeCertificates } from '../../agent/certs/cert-index.js';
import { makeTestCert } from '../helpers/test-certs.js';

let dir: string;
const pem: Record<string, { cert: string; key: string }> = {};

async function make(name: string, names: string[], extra: { expired?: boolean; days?: number } = {}): Promise<void> {
  const made = await makeTestCert({ names, cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), ...extra });
  pem[name] = { cert: readFileSync(made.cert, 'utf8'), key: readFileSync(made.key, 'utf8') };
}

function source(id: string, cert: string | null, key: string | null, problem: string | null = null): CertSource {
  return { id: `${id}.crt`, certFile: `/certs/${id}.crt`, keyFile: `/certs/${id}.key`, certPem: cert, keyPem: key, problem, settling: false };
}

const of = (name: string) => source(name, pem[name]!.cert, pem[name]!.key);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeroute-cert-index-'));
  await Promise.all([
    make('a', ['a.test', 'WWW.A.test', '*.wild.test']),
    make('b', ['b.test']),
    make('renewed-b', ['b.test'], { days: 90 }),
    make('old', ['old.test'], { expired: true }),
    make('x-wild', ['x.wild.test']),
  ]);
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('indexCertificates', () => {
  it('indexes each good certificate by its DNS subjectAltNames, in lower case', () => {
    const index = indexCertificates([of('a')], Date.now());
    expect([...index.byName]).toEqual([
      ['*.wild.test', 'a.crt'],
      ['a.test', 'a.crt'],
      ['www.a.test', 'a.crt'],
    ]);
    const [a] = index.certs;
    expect(a?.status).toBe('served');
    expect(a?.problem).toBeNull();
    expect(a?.notAfter?.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(a?.certPem).toBe(pem.a!.cert);
  });

  it('gives a name held by two certificates to the one that expires later', () => {
    const index = indexCertificates([of('renewed-b'), of('b')], Date.now());
    expect(index.byName.get('b.test')).toBe('renewed-b.crt');
    const b = index.certs.find((c) => c.id === 'b.crt');
    expect(b?.status).toBe('unused');
    expect(b?.certPem).toBeNull();
  });

  it('refuses a key that does not match, naming both files, and serves the rest', () => {
    const index = indexCertificates([source('mismatch', pem.a!.cert, pem.b!.key), of('b')], Date.now());
    const refused = index.certs.find((c) => c.id === 'mismatch.crt');
    expect(refused?.status).toBe('refused');
    expect(refused?.problem).toBe('the key /certs/mismatch.key does not match the certificate /certs/mismatch.crt');
    expect(refused?.keyPem).toBeNull();
    expect(index.byName.get('a.test')).toBeUndefined();
    expect(index.byName.get('b.test')).toBe('b.crt');
  });

  it('refuses an expired certificate, and one that expires while the agent runs', () => {
    const expired = indexCertificates([of('old')], Date.now()).certs[0];
    expect(expired?.status).toBe('refused');
    expect(expired?.problem).toBe('/certs/old.crt expired on 2020-01-02T00:00:00.000Z');
    expect(expired?.names).toEqual(['old.test']);
    const later = indexCertificates([of('a')], Date.now() + 31 * 86_400_000).certs[0];
    expect(later?.status).toBe('refused');
    expect(later?.problem).toMatch(/expired on/);
  });

  it('refuses unreadable files and garbage without quoting them', () => {
    const index = indexCertificates(
      [
        source('gone', null, null, 'cannot read /certs/gone.key (ENOENT)'),
        source('text', 'hello', pem.a!.key),
        source('broken', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', pem.a!.key),
        source('badkey', pem.a!.cert, '-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n'),
        source('nokey', pem.a!.cert, pem.a!.cert),
      ],
      Date.now(),
    );
    const problems = Object.fromEntries(index.certs.map((c) => [c.id, c.problem]));
    expect(problems).toEqual({
      'badkey.crt': '/certs/badkey.key is not a readable PEM private key (an encrypted key cannot be used)',
      'broken.crt': 'certificate 1 of /certs/broken.crt is not a valid X.509 certificate',
      'gone.crt': 'cannot read /certs/gone.key (ENOENT)',
      'nokey.crt': '/certs/nokey.key is not a readable PEM private key (an encrypted key cannot be used)',
      'text.crt': '/certs/text.crt holds no PEM certificate',
    });
    expect(JSON.stringify(index.certs)).not.toContain('secret');
    expect(index.byName.size).toBe(0);
  });

  it('serves a full chain whole, judging its first certificate', () => {
    const chain = pem.a!.cert + pem.b!.cert;
    const index = indexCertificates([source('chain', chain, pem.a!.key)], Date.now());
    expect(index.certs[0]?.status).toBe('served');
    expect(index.certs[0]?.certPem).toBe(chain);
    expect(index.byName.get('b.test')).toBeUndefined();
  });
});

describe('withAcmeCertificates', () => {
  const acme = (name: string, file: string) => ({ ...source(file, pem[file]!.cert, pem[file]!.key), id: `acme/${name}`, certFile: `acme:${name}`, keyFile: `acme:${name}` });

  it('serves an ACME certificate only for names no folder certificate serves, exactly or by wildcard', () => {
    const manual = indexCertificates([of('b')], Date.now());
    const ordered = indexCertificates([acme('b.test', 'renewed-b'), acme('a.test', 'a')], Date.now());
    const merged = withAcmeCertificates(manual, ordered);
    // renewed-b expires later than b, but b is the operator's: it wins.
    expect(merged.byName.get('b.test')).toBe('b.crt');
    expect(merged.certs.find((cert) => cert.id === 'acme/b.test')).toMatchObject({ status: 'unused', servedNames: [], certPem: null, keyPem: null });
    expect(merged.byName.get('a.test')).toBe('acme/a.test');
    // The folder's *.wild.test covers x.wild.test: the ordered one is not served.
    const wildManual = withAcmeCertificates(indexCertificates([of('a')], Date.now()), indexCertificates([acme('x.wild.test', 'x-wild')], Date.now()));
    expect(wildManual.byName.has('x.wild.test')).toBe(false);
    expect(wildManual.certs.find((cert) => cert.id === 'acme/x.wild.test')?.status).toBe('unused');
  });
});
