/**
 * Judges certificate pairs and indexes the good ones by their DNS
 * subjectAltNames: which certificate serves which SNI name. Pure: files'
 * contents and the clock in, the index out.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CertSource } from './cert-files.js';

export type CertStatus = 'served' | 'refused' | 'unused';

export interface IndexedCert {
  readonly id: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Every DNS subjectAltName, lower case (empty when unreadable). */
  readonly names: readonly string[];
  /** The names this certificate serves: those no later-expiring certificate also has. */
  readonly servedNames: readonly string[];
  readonly notAfter: Date | null;
  readonly status: CertStatus;
  /** Why it is refused or unused; null when served. Never quotes the files. */
  readonly problem: string | null;
  /** The full chain and the key, for the push only; null unless served. */
  readonly certPem: string | null;
  readonly keyPem: string | null;
}

export interface CertIndex {
  /** Sorted by id. */
  readonly certs: readonly IndexedCert[];
  /** SNI name (exact, or `*.suffix`) → id of the certificate that serves it. */
  readonly byName: ReadonlyMap<string, string>;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** A host name, or a wildcard of one whole leftmost label, as TLS clients accept. */
const DNS_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

export function indexCertificates(sources: readonly CertSource[], now: number): CertIndex {
  const judged = [...sources].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((source) => judge(source, now));
  // A name in several good certificates goes to the one that expires last (a
  // renewal next to the old file), then the first by id.
  const byName = new Map<string, Judged>();
  for (const cert of judged) {
    if (cert.problem !== null) continue;
    for (const name of cert.names) {
      const holder = byName.get(name);
      if (!holder || (cert.notAfter?.getTime() ?? 0) > (holder.notAfter?.getTime() ?? 0)) byName.set(name, cert);
    }
  }
  const certs = judged.map((cert): IndexedCert => {
    if (cert.problem !== null) return { ...cert, servedNames: [], status: 'refused', certPem: null, keyPem: null };
    const servedNames = cert.names.filter((name) => byName.get(name) === cert);
    if (servedNames.length === 0) {
      return { ...cert, servedNames, status: 'unused', problem: 'every name is served by a certificate that expires later', certPem: null, keyPem: null };
    }
    return { ...cert, servedNames, status: 'served' };
  });
  return { certs, byName: new Map([...byName].map(([name, cert]) => [name, cert.id])) };
}

interface Judged {
  readonly id: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly names: readonly string[];
  readonly notAfter: Date | null;
  readonly problem: string | null;
  readonly certPem: string | null;
  readonly keyPem: string | null;
}

function judge(source: CertSource, now: number): Judged {
  const base = { id: source.id, certFile: source.certFile, keyFile: source.keyFile };
  const refuse = (problem: string, names: readonly string[] = [], notAfter: Date | null = null): Judged => ({ ...base, names, notAfter, problem, certPem: null, keyPem: null });
  if (source.problem !== null || source.certPem === null || source.keyPem === null) return refuse(source.problem ?? 'unreadable');

  const blocks = source.certPem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return refuse(`${source.certFile} holds no PEM certificate`);
  const chain: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch {
      return refuse(`certificate ${i + 1} of ${source.certFile} is not a valid X.509 certificate`);
    }
  }
  const leaf = chain[0] as X509Certificate;
  const names = dnsNames(leaf);
  const notAfter = new Date(leaf.validTo);
  if (names.length === 0) return refuse(`${source.certFile} has no DNS subjectAltName`, names, notAfter);
  if (!(notAfter.getTime() > now)) return refuse(`${source.certFile} expired on ${notAfter.toISOString()}`, names, notAfter);

  let key;
  try {
    key = createPrivateKey(source.keyPem);
  } catch {
    // OpenSSL's message says nothing more useful, and the key is not quoted.
    return refuse(`${source.keyFile} is not a readable PEM private key (an encrypted key cannot be used)`, names, notAfter);
  }
  if (!leaf.checkPrivateKey(key)) return refuse(`the key ${source.keyFile} does not match the certificate ${source.certFile}`, names, notAfter);
  return { ...base, names, notAfter, problem: null, certPem: source.certPem, keyPem: source.keyPem };
}

/** `DNS:a.example, DNS:*.example, IP Address:10.0.0.1`; SNI carries no addresses. */
function dnsNames(cert: X509Certificate): string[] {
  const names = new Set<string>();
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (!part.startsWith('DNS:')) continue;
    const name = part.slice(4).toLowerCase().replace(/\.$/, '');
    if (name.length <= 253 && DNS_NAME.test(name)) names.add(name);
  }
  return [...names].sort();
}

/**
 * The --certs folder's index with the ACME certificates added: a name a
 * folder certificate serves (exactly, or by its wildcard) stays the folder's,
 * so an operator's certificate always wins over an ordered one.
 */
export function withAcmeCertificates(manual: CertIndex, acme: CertIndex): CertIndex {
  const byName = new Map(manual.byName);
  const covered = (name: string) => {
    if (manual.byName.has(name)) return true;
    const dot = name.indexOf('.');
    return dot > 0 && manual.byName.has(`*${name.slice(dot)}`);
  };
  const added = acme.certs.map((cert): IndexedCert => {
    if (cert.status !== 'served') return cert;
    const servedNames = cert.servedNames.filter((name) => !covered(name));
    if (servedNames.length === 0) return { ...cert, servedNames, status: 'unused', problem: 'a --certs certificate serves its name', certPem: null, keyPem: null };
    for (const name of servedNames) byName.set(name, cert.id);
    return { ...cert, servedNames };
  });
  return { certs: [...manual.certs, ...added], byName };
}
