/** The compiled path of a script the benchmarks run as a child process, from dist/ or from source (vitest). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../agent/project-paths.js';

/** `name` is relative to bench/lib, without extension, e.g. "tls-client". */
export function childScript(name: string): string {
  const compiled = join(PROJECT_ROOT, 'dist', 'bench', 'lib', `${name}.js`);
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: build first (npx tsc -p tsconfig.json)`);
  return compiled;
}
