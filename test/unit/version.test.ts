import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EDGEROUTE_VERSION, SHIPPED_PLUGIN_VERSION } from '../../agent/version.js';
import { PluginVersionWatch } from '../../agent/dataplane/nginx/plugin-version.js';
import { captureLog } from '../helpers/log-capture.js';

const root = join(import.meta.dirname, '..', '..');

describe('one release for the package, the CLI and the plugin', () => {
  it('is package.json\'s version, a semver, in lua/edgeroute/version.lua and at the top of CHANGELOG.md', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(EDGEROUTE_VERSION).toBe(pkg.version);
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(SHIPPED_PLUGIN_VERSION).toBe(pkg.version);
    const changelog = readFileSync(join(root, 'CHANGELOG.md'), 'utf8');
    const released = /^## \[(\d+\.\d+\.\d+[^\]]*)\]/m.exec(changelog)?.[1];
    expect(released).toBe(pkg.version);
  });
});

describe('PluginVersionWatch', () => {
  it('warns once when nginx runs another release of the plugin, again when it changes, and says so in the metric', async () => {
    const logs = captureLog();
    const registry = new Registry();
    const watch = new PluginVersionWatch(logs.log, registry);
    watch.observe('0.0.9');
    watch.observe('0.0.9');
    watch.observe(null);
    watch.observe(EDGEROUTE_VERSION);
    const warnings = logs.lines().filter((l) => l.level === 40);
    expect(warnings.map((l) => l.pluginVersion)).toEqual(['0.0.9', 'unknown']);
    expect(logs.lines().filter((l) => l.level === 30).map((l) => l.pluginVersion)).toEqual([EDGEROUTE_VERSION]);
    expect(await registry.metrics()).toContain(`edgeroute_build_info{version="${EDGEROUTE_VERSION}",plugin_version="${EDGEROUTE_VERSION}"} 1`);
  });
});
