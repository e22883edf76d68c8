/**
 * Which release of the Lua plugin the agent's nginx runs. The push format
 * and the admin endpoints move with the release, so another version is
 * worth one warning (again only when it changes), and is shown in
 * /v1/state and the edgeroute_build_info metric.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { EDGEROUTE_VERSION } from '../../version.js';

export class PluginVersionWatch {
  /** null until nginx answered; "unknown" for a plugin older than 0.2.0, which does not say. */
  private seen: string | null = null;

  constructor(
    private readonly log: Logger,
    registry: Registry,
  ) {
    const watch = this;
    new Gauge({
      name: 'edgeroute_build_info',
      help: 'Always 1: the agent\'s release, and the release of the Lua plugin its nginx runs',
      labelNames: ['version', 'plugin_version'],
      registers: [registry],
      collect() {
        this.reset();
        this.set({ version: EDGEROUTE_VERSION, plugin_version: watch.seen ?? '' }, 1);
      },
    });
  }

  get pluginVersion(): string | null {
    return this.seen;
  }

  observe(reported: string | null): void {
    const version = reported ?? 'unknown';
    if (version === this.seen) return;
    this.seen = version;
    if (version === EDGEROUTE_VERSION) this.log.info({ pluginVersion: version }, 'nginx runs the plugin of this release');
    else this.log.warn({ pluginVersion: version, agentVersion: EDGEROUTE_VERSION }, 'nginx runs the Lua plugin of another release; install the same release on both (edgeroute nginx-conf, then restart nginx)');
  }
}
