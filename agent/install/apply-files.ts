/**
 * Brings the disk in line with the plan's folders and files, touching only
 * what differs, so that a second run changes nothing. With dryRun it only
 * reports. Owners are applied when their ids are known (on the node, after
 * the account exists); under --root they are only reported.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { underRoot } from './install-layout.js';
import type { Owner, PlannedDir, PlannedFile } from './install-plan.js';
import type { AccountIds } from './system-account.js';

export type Difference = 'new' | 'content' | 'mode' | 'owner' | null;

export interface FileOutcome {
  /** Where it is (or would be) on disk, under --root. */
  readonly target: string;
  readonly mode: number;
  readonly owner: Owner;
  readonly kind: 'dir' | 'file';
  readonly difference: Difference;
  readonly role: PlannedFile['role'] | null;
}

export interface ApplyOptions {
  readonly root: string;
  readonly dryRun: boolean;
  /** Ids to chown to; null: report the owner only. */
  readonly ids: (owner: Owner) => AccountIds | null;
}

export function applyDirs(dirs: readonly PlannedDir[], options: ApplyOptions): FileOutcome[] {
  return dirs.map((dir) => {
    const target = underRoot(options.root, dir.path);
    const ids = options.ids(dir.owner);
    const difference: Difference = !existsSync(target) ? 'new' : dir.enforce ? metadataDifference(target, dir.mode, ids) : null;
    if (difference && !options.dryRun) {
      mkdirSync(target, { recursive: true, mode: dir.mode });
      setMetadata(target, dir.mode, ids);
    }
    return { target, mode: dir.mode, owner: dir.owner, kind: 'dir', difference, role: null };
  });
}

export function applyFiles(files: readonly PlannedFile[], options: ApplyOptions): FileOutcome[] {
  return files.map((file) => {
    const target = underRoot(options.root, file.path);
    const ids = options.ids(file.owner);
    const difference: Difference = !existsSync(target) ? 'new' : !file.keep && readFileSync(target, 'utf8') !== file.content ? 'content' : metadataDifference(target, file.mode, ids);
    if (difference === 'mode' || difference === 'owner') {
      // The content is right (or kept): only the metadata changes.
      if (!options.dryRun) setMetadata(target, file.mode, ids);
    } else if (difference && !options.dryRun) {
      mkdirSync(dirname(target), { recursive: true });
      // Written aside and renamed over: a reader (systemd, the agent, nginx) never sees half a file,
      // and a secret is never readable by others, not even for a moment.
      const temporary = `${target}.edgeroute-install.tmp`;
      writeFileSync(temporary, file.content, { mode: file.mode });
      setMetadata(temporary, file.mode, ids);
      renameSync(temporary, target);
    }
    return { target, mode: file.mode, owner: file.owner, kind: 'file', difference, role: file.role };
  });
}

function metadataDifference(target: string, mode: number, ids: AccountIds | null): Difference {
  const stat = statSync(target);
  if ((stat.mode & 0o7777) !== mode) return 'mode';
  if (ids && (stat.uid !== ids.uid || stat.gid !== ids.gid)) return 'owner';
  return null;
}

function setMetadata(target: string, mode: number, ids: AccountIds | null): void {
  chmodSync(target, mode);
  if (ids) chownSync(target, ids.uid, ids.gid);
}
