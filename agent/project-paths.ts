/** Where the project's own files live, from source (vitest) or from dist/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'lua', 'edgeroute', 'plugin.lua')) && existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('edgeroute: cannot find the project root (lua/edgeroute/plugin.lua)');
    dir = parent;
  }
}

export const PROJECT_ROOT = findProjectRoot();
export const LUA_DIR = join(PROJECT_ROOT, 'lua');
export const TEMPLATES_DIR = join(PROJECT_ROOT, 'templates');
