/**
 * Whether a user other than the owner can reach a file: the agent (user
 * edgeroute) runs the package's bin with node, and nginx's workers (nobody)
 * load the package's Lua. A package installed under /root, say by a
 * per-user Node manager, is out of their reach, and the units would fail.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The first path in `file`'s chain that others cannot read (the file) or pass through (its folders); null when none. */
export function hiddenFromOthers(file: string): string | null {
  if ((statSync(file).mode & 0o004) === 0) return file;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return dir;
    if (dirname(dir) === dir) return null;
  }
}
