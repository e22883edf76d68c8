/**
 * `--certs DIR`: rescans the folder every couple of seconds (and soon after
 * fs.watch reports a change), and keeps the data plane (nginx or HAProxy,
 * through a CertTarget) holding the set it serves, with the ACME
 * certificates (setAcme) added for the names no folder certificate serves.
 * The data plane is asked every scan which set it holds, so a restarted
 * nginx or a reloaded HAProxy, which lost the set, gets it again without a reload.
 *
 * A refused file is logged once per change (problem or contents), not on
 * every scan; private keys are never logged, listed or published.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { readCertFolder, type CertSource } from './cert-files.js';
import { indexCertificates, withAcmeCertificates, type CertIndex, type CertStatus } from './cert-index.js';
import type { CertSetBody, CertTarget } from './cert-set.js';
import { RefreshLoop } from '../control/refresh-loop.js';

/** What /v1/state and the dashboard show of a certificate: no key material. */
export interface CertificateView {
  readonly id: string;
  readonly file: string;
  readonly keyFile: string;
  readonly names: readonly string[];
  readonly servedNames: readonly string[];
  readonly notAfter: string | null;
  readonly status: CertStatus;
  readonly problem: string | null;
  /** Where it comes from: the --certs folder, or an ACME order kept in Redis. */
  readonly source: 'folder' | 'acme';
}

/** An ACME certificate as Redis holds it, for nginx. */
export interface AcmeCertificate {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const ACME_ID = 'acme/';

export interface CertWatcherDeps {
  /** The --certs folder; null: ACME certificates only. */
  readonly dir: string | null;
  /** The data plane's certificates: nginx's endpoint, HAProxy's runtime API. */
  readonly target: CertTarget;
  /** Keeps the set for nginx to load at start; null: no snapshot. */
  readonly saveSnapshot: ((set: CertSetBody) => Promise<void>) | null;
  readonly now?: () => number;
  readonly scanIntervalMs?: number;
  /** A file changed more recently than this may be half written: its last good contents stay. */
  readonly settleMs?: number;
}

export class CertWatcher {
  private index: CertIndex = { certs: [], byName: new Map() };
  /** The folder's certificates alone: the names they serve win over ACME's. */
  private manualIndex: CertIndex = { certs: [], byName: new Map() };
  private acme: CertSource[] = [];
  private set: CertSetBody | null = null;
  private setFingerprint: string | null = null;
  private setCount = 0;
  /** Last contents read per id, so that a file being written keeps serving its previous contents. */
  private sources = new Map<string, CertSource>();
  /** Refused files → problem and contents, to log each change once. */
  private reported = new Map<string, string>();
  private folderProblem: string | null = null;
  private targetProblem: string | null = null;
  private snapshotProblem: string | null = null;
  private readonly scans: RefreshLoop;
  private watcher: FSWatcher | null = null;
  private snapshotWriting: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly scanIntervalMs: number;
  private readonly settleMs: number;

  constructor(
    private readonly deps: CertWatcherDeps,
    private readonly log: Logger,
  ) {
    this.now = deps.now ?? Date.now;
    this.scanIntervalMs = deps.scanIntervalMs ?? 2_000;
    this.settleMs = deps.settleMs ?? 1_000;
    // A scan that throws must not stop the next ones.
    this.scans = new RefreshLoop(() => this.scan(), (err) => this.log.error({ err: err.message }, 'certificate scan failed'), this.scanIntervalMs);
  }

  start(): void {
    this.scans.start();
    if (this.deps.dir === null) return;
    try {
      // Files written in a burst (a cert, then its key) make one scan.
      this.watcher = watch(this.deps.dir, () => this.poke(200));
      this.watcher.on('error', () => undefined);
    } catch {
      // No folder yet: the periodic scan says so, and notices it later.
    }
    this.log.info({ dir: this.deps.dir }, 'watching the certificate folder');
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    await this.scans.stop();
    await this.snapshotWriting;
  }

  /** Scans after `delayMs`, unless a scan is already due sooner. */
  poke(delayMs: number): void {
    this.scans.poke(delayMs);
  }

  /** The ACME certificates to serve beside the folder's; pushed at the next scan (soon). */
  setAcme(certs: readonly AcmeCertificate[]): void {
    this.acme = certs.map((cert) => ({
      id: `${ACME_ID}${cert.name}`,
      certFile: `acme:${cert.name}`,
      keyFile: `acme:${cert.name}`,
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      problem: null,
      settling: false,
    }));
    this.poke(0);
  }

  /** The SNI names (exact or `*.parent`) the folder's certificates serve. */
  manualNames(): ReadonlySet<string> {
    return new Set(this.manualIndex.byName.keys());
  }

  /** Every certificate in the folder and from ACME, served or not, without key material. */
  certificates(): CertificateView[] {
    return this.index.certs.map((cert) => ({
      id: cert.id,
      file: cert.certFile,
      keyFile: cert.keyFile,
      names: cert.names,
      servedNames: cert.servedNames,
      notAfter: cert.notAfter ? cert.notAfter.toISOString() : null,
      status: cert.status,
      problem: cert.problem,
      source: cert.id.startsWith(ACME_ID) ? ('acme' as const) : ('folder' as const),
    }));
  }

  /** One scan: read, judge, report, push if the data plane holds another set. */
  async scan(): Promise<void> {
    if (this.scans.isStopped) return;
    const now = this.now();
    let read: CertSource[];
    try {
      read = this.deps.dir === null ? [] : await readCertFolder(this.deps.dir, now, this.settleMs);
      if (this.folderProblem) this.log.info({ dir: this.deps.dir }, 'certificate folder readable again');
      this.folderProblem = null;
    } catch (err) {
      // An unmounted or mistyped folder keeps what the data plane serves rather than dropping every certificate.
      const problem = (err as NodeJS.ErrnoException).code ?? 'error';
      if (problem !== this.folderProblem) this.log.warn({ dir: this.deps.dir, problem }, `cannot read the certificate folder ${this.deps.dir}; serving the last set`);
      this.folderProblem = problem;
      await this.ensureTarget();
      return;
    }
    // A pair being written keeps its last contents, or waits to be judged
    // when it is new, so that a certificate written before its key is not refused.
    const sources = new Map<string, CertSource>();
    let settling = false;
    for (const source of read) {
      if (!source.settling) {
        sources.set(source.id, source);
        continue;
      }
      settling = true;
      const previous = this.sources.get(source.id);
      if (previous) sources.set(source.id, previous);
    }
    this.sources = sources;
    this.manualIndex = indexCertificates([...sources.values()], now);
    this.index = withAcmeCertificates(this.manualIndex, indexCertificates(this.acme, now));
    if (settling) setTimeout(() => this.poke(0), this.settleMs).unref();
    this.report();
    this.updateSet();
    await this.ensureTarget();
  }

  private report(): void {
    const next = new Map<string, string>();
    for (const cert of this.index.certs) {
      if (cert.status !== 'refused' || cert.problem === null) continue;
      const source = this.sources.get(cert.id) ?? this.acme.find((acme) => acme.id === cert.id);
      const key = `${cert.problem}\u0000${fingerprint([source?.certPem ?? '', source?.keyPem ?? ''])}`;
      next.set(cert.certFile, key);
      if (this.reported.get(cert.certFile) !== key) {
        this.log.warn({ file: cert.certFile, keyFile: cert.keyFile, problem: cert.problem }, `certificate ${cert.certFile} refused: ${cert.problem}`);
      }
    }
    for (const file of this.reported.keys()) {
      if (!next.has(file)) this.log.info({ file }, `certificate ${file} no longer refused`);
    }
    this.reported = next;
  }

  private updateSet(): void {
    const served = this.index.certs.filter((cert) => cert.status === 'served');
    const certs = served.map((cert) => ({ id: cert.id, names: cert.servedNames, cert_pem: cert.certPem ?? '', key_pem: cert.keyPem ?? '' }));
    // Held in memory only: it digests key material.
    const digest = fingerprint(certs.flatMap((c) => [c.id, c.names.join(','), c.cert_pem, c.key_pem]));
    if (digest === this.setFingerprint) return;
    this.setFingerprint = digest;
    this.setCount += 1;
    this.set = { version: `certs-${this.now().toString(36)}-${this.setCount}`, certs };
    this.log.info({ version: this.set.version, certificates: served.map((cert) => ({ file: cert.certFile, names: cert.servedNames })) }, 'certificate set changed');
    void this.saveSnapshot(this.set);
  }

  /** One write at a time, in order: the last set written is the last set made. */
  private saveSnapshot(set: CertSetBody): Promise<void> {
    this.snapshotWriting = this.snapshotWriting.then(() => this.writeSnapshot(set));
    return this.snapshotWriting;
  }

  private async writeSnapshot(set: CertSetBody): Promise<void> {
    if (!this.deps.saveSnapshot) return;
    try {
      await this.deps.saveSnapshot(withoutAcme(set));
      this.snapshotProblem = null;
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.snapshotProblem) this.log.warn({ err: problem }, 'cannot write the certificate snapshot');
      this.snapshotProblem = problem;
    }
  }

  private async ensureTarget(): Promise<void> {
    const set = this.set;
    if (set === null) return;
    try {
      const target = this.deps.target;
      if ((await target.version()) === set.version) return;
      await target.replace(set);
      this.log.info({ version: set.version, certificates: set.certs.length }, `certificates pushed to ${target.label}`);
      // The data plane lost its set (an nginx restarted without the snapshot): the snapshot may be gone too.
      await this.saveSnapshot(set);
      if (this.targetProblem) this.log.info(`${target.label} takes certificates again`);
      this.targetProblem = null;
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.targetProblem) this.log.warn({ err: problem }, `cannot push the certificates to ${this.deps.target.label}; retrying`);
      this.targetProblem = problem;
    }
  }
}

/**
 * The set for the snapshot file: ACME keys stay in Redis (and nginx's
 * memory), never on the node's disk. Another version than the set's, so
 * that an nginx restarted from the snapshot is pushed the ACME ones at the
 * next scan.
 */
function withoutAcme(set: CertSetBody): CertSetBody {
  const certs = set.certs.filter((cert) => !cert.id.startsWith(ACME_ID));
  return certs.length === set.certs.length ? set : { version: `${set.version}-without-acme`, certs };
}

function fingerprint(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\u0000');
  return hash.digest('hex');
}
