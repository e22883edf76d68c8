/**
 * Reads the certificate pairs of a --certs folder: `NAME.crt` + `NAME.key`,
 * and certbot's `live/NAME/fullchain.pem` + `privkey.pem` (symlinks into
 * archive/, followed). Contents only; judging them is cert-index.ts's job.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A certificate file and its key file, as read. */
export interface CertSource {
  /** Stable while the files keep their names: "NAME.crt" or "live/NAME". */
  readonly id: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Null with `problem` when a file could not be read. */
  readonly certPem: string | null;
  readonly keyPem: string | null;
  readonly problem: string | null;
  /** One of the files changed less than `settleMs` ago: it may be half written. */
  readonly settling: boolean;
}

/** A PEM chain or key is a few KiB; anything this big is not one. */
const MAX_FILE_BYTES = 1024 * 1024;

/** Throws when the folder itself cannot be read. */
export async function readCertFolder(dir: string, now: number, settleMs: number): Promise<CertSource[]> {
  const pairs: Array<{ id: string; certFile: string; keyFile: string }> = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.name.endsWith('.crt') || entry.isDirectory()) continue;
    const name = entry.name.slice(0, -'.crt'.length);
    pairs.push({ id: entry.name, certFile: join(dir, entry.name), keyFile: join(dir, `${name}.key`) });
  }
  if (entries.some((entry) => entry.name === 'live' && (entry.isDirectory() || entry.isSymbolicLink()))) {
    const live = join(dir, 'live');
    for (const entry of await readdir(live, { withFileTypes: true }).catch(() => [])) {
      // certbot keeps a README there; every other entry is a lineage folder.
      if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
      const certFile = join(live, entry.name, 'fullchain.pem');
      if (!(await stat(certFile).then((s) => s.isFile(), () => false))) continue;
      pairs.push({ id: `live/${entry.name}`, certFile, keyFile: join(live, entry.name, 'privkey.pem') });
    }
  }
  pairs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return readCertPairs(pairs, now, settleMs);
}

/**
 * The pairs, read; one whose certificate file is gone by the time it is read
 * is left out: it was removed after the folder was listed, and reporting it
 * as unreadable (for one scan) would warn about a file ops just deleted.
 */
export async function readCertPairs(pairs: ReadonlyArray<{ id: string; certFile: string; keyFile: string }>, now: number, settleMs: number): Promise<CertSource[]> {
  const read = await Promise.all(pairs.map((pair) => readPair(pair, now, settleMs)));
  return read.filter((source): source is CertSource => source !== null);
}

async function readPair(pair: { id: string; certFile: string; keyFile: string }, now: number, settleMs: number): Promise<CertSource | null> {
  const cert = await readPem(pair.certFile);
  if (cert.gone) return null;
  const key = await readPem(pair.keyFile);
  const problem = cert.problem ?? key.problem;
  return {
    ...pair,
    certPem: problem ? null : cert.text,
    keyPem: problem ? null : key.text,
    problem,
    // A time in the future (a skewed clock, `touch -d`) does not hold a file back forever. "The future"
    // is after the file was looked at, not after the scan began: a scan slowed by a loaded machine
    // may read a pair seconds after `now`, half written by then.
    settling: [cert, key].some(({ changedAt, checkedAt }) => changedAt > now - settleMs && changedAt < checkedAt + settleMs),
  };
}

/** `checkedAt`: when its change time was read (the real clock, as file times are). */
async function readPem(file: string): Promise<{ text: string | null; problem: string | null; changedAt: number; checkedAt: number; gone?: true }> {
  try {
    const info = await stat(file);
    const checkedAt = Date.now();
    if (!info.isFile()) return { text: null, problem: `${file} is not a file`, changedAt: 0, checkedAt };
    if (info.size > MAX_FILE_BYTES) return { text: null, problem: `${file} is larger than 1 MiB`, changedAt: info.mtimeMs, checkedAt };
    return { text: await readFile(file, 'utf8'), problem: null, changedAt: info.mtimeMs, checkedAt };
  } catch (err) {
    // The code (ENOENT, EACCES) says enough; nothing of the file is quoted.
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { text: null, problem: `cannot read ${file} (${code})`, changedAt: 0, checkedAt: Date.now(), ...(code === 'ENOENT' ? { gone: true as const } : {}) };
  }
}
