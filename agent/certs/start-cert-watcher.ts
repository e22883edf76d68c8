/** Wires `--certs DIR` for the agent: the folder watcher, the data plane's certificates, the snapshot and the metric. */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerCertificateExpiry } from './cert-metrics.js';
import type { CertTarget } from './cert-set.js';
import { certSnapshotPath, writeCertSnapshot } from './cert-snapshot.js';
import { CertWatcher } from './cert-watcher.js';

export interface CertWatcherOptions {
  /** The --certs folder; null: ACME certificates only. */
  readonly dir: string | null;
  /** Where the set goes: nginx's admin endpoint, HAProxy's runtime API. */
  readonly target: CertTarget;
  /** The routing snapshot (--snapshot-file); the certificates go next to it. Null: no snapshot. */
  readonly snapshotFile: string | null;
  readonly registry: Registry;
  /** Default 2 s. */
  readonly scanIntervalMs?: number;
}

export function startCertWatcher(opts: CertWatcherOptions, log: Logger): CertWatcher {
  const snapshotFile = opts.snapshotFile;
  const watcher = new CertWatcher(
    {
      dir: opts.dir,
      target: opts.target,
      saveSnapshot: snapshotFile ? (set) => writeCertSnapshot(certSnapshotPath(snapshotFile), set) : null,
      ...(opts.scanIntervalMs === undefined ? {} : { scanIntervalMs: opts.scanIntervalMs }),
    },
    log,
  );
  registerCertificateExpiry(opts.registry, () => watcher.certificates());
  watcher.start();
  return watcher;
}
