#!/usr/bin/env node
// Runs the compiled CLI. In a source checkout (tsconfig.json and agent/*.ts
// present) it first builds dist/ when the TypeScript sources are newer (a fresh
// checkout, or after an edit); an installed package has no sources and no tsc,
// so it just runs dist/.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(root, 'dist', 'agent', 'cli', 'main.js');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function newestSource(dir) {
  let newest = 0;
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, item.name);
    if (item.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (item.name.endsWith('.ts') && !item.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const isCheckout = existsSync(join(root, 'tsconfig.json')) && existsSync(join(root, 'agent', 'cli', 'main.ts'));

function needsBuild() {
  if (!isCheckout) return false;
  if (!existsSync(entry)) return true;
  if (!existsSync(tsc)) return false;
  const built = statSync(entry).mtimeMs;
  return [join(root, 'agent'), join(root, 'test', 'sim')].some((dir) => existsSync(dir) && newestSource(dir) > built);
}

if (needsBuild()) {
  if (!existsSync(tsc)) {
    console.error('edgeroute: dist/ is missing and TypeScript is not installed; run `npm ci` in ' + root);
    process.exit(1);
  }
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

if (!existsSync(entry)) {
  console.error('edgeroute: ' + entry + ' is missing: this package was packed without running its build');
  process.exit(1);
}

await import(entry);
