/** Wires `--certs DIR` for the agent: the folder watcher, nginx's endpoint, the snapshot and the metric. */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerCertificateExpiry } from './cert-metrics.js';
import { certSnapshotPath, writeCertSnapshot } from './cert-snapshot.js';
import { CertWatcher } from './cert-watcher.js';
import { NginxCerts } from './nginx-certs.js';

export interface CertWatcherOptions {
  /** The --certs folder; null: ACME certificates only. */
  readonly dir: string | null;
  /** The plugin's admin listener, without a trailing slash. */
  readonly nginxAdmin: string;
  readonly adminToken: string;
  /** The routing snapshot (--snapshot-file); the certificates go next to it. Null: no snapshot. */
  readonly snapshotFile: string | null;
  readonly registry: Registry;
}

export function startCertWatcher(opts: CertWatcherOptions, log: Logger): CertWatcher {
  const snapshotFile = opts.snapshotFile;
  const watcher = new CertWatcher(
    {
      dir: opts.dir,
      plugin: new NginxCerts(opts.nginxAdmin, opts.adminToken),
      saveSnapshot: snapshotFile ? (set) => writeCertSnapshot(certSnapshotPath(snapshotFile), set) : null,
    },
    log,
  );
  registerCertificateExpiry(opts.registry, () => watcher.certificates());
  watcher.start();
  return watcher;
}
