/** The release of this package, and of the Lua plugin it ships: one semver for both. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LUA_DIR, PROJECT_ROOT } from './project-paths.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** The plugin's version as lua/edgeroute/version.lua states it. */
function shippedPluginVersion(): string {
  const text = readFileSync(join(LUA_DIR, 'edgeroute', 'version.lua'), 'utf8');
  return /^return "([^"]+)"/m.exec(text)?.[1] ?? 'unknown';
}

export const EDGEROUTE_VERSION = packageVersion();
export const SHIPPED_PLUGIN_VERSION = shippedPluginVersion();
