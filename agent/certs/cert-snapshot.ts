/**
 * The certificate set last given to nginx, kept next to the routing snapshot
 * (`<snapshot-file>.certs`) for the plugin to load when nginx starts. It holds
 * private keys: created 0600 (nginx's master reads it as root, before
 * dropping privileges), and replaced atomically.
 */
import { chmod, open, rename, unlink } from 'node:fs/promises';
import type { CertSetBody } from './cert-set.js';

export function certSnapshotPath(snapshotFile: string): string {
  return `${snapshotFile}.certs`;
}

export async function writeCertSnapshot(path: string, set: CertSetBody): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  // 'wx' with mode 0600: the file never exists with wider permissions, even for a moment.
  const file = await open(temporary, 'wx', 0o600).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    await unlink(temporary);
    return open(temporary, 'wx', 0o600);
  });
  try {
    await file.writeFile(JSON.stringify(set));
    await file.sync();
  } finally {
    await file.close();
  }
  // A umask cannot widen 0600, but an odd one may narrow it; make it exact.
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}
