/**
 * nginx with the Lua plugin as the agent's data plane: tables go to the
 * plugin's admin endpoint as pushes, the plugin's status says what nginx
 * holds and which plugin release it runs, and the last table held is kept in
 * the snapshot file nginx loads when it (re)starts.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RoutingTable } from '../../core/routing-table.js';
import type { ApplyResult, DataPlane, DataPlaneStatus, InflightReport, TableChange, TrafficReading, TrafficSource } from '../data-plane.js';
import { NginxAdmin } from './admin.js';
import { PluginTraffic } from './plugin-traffic.js';
import { PluginVersionWatch } from './plugin-version.js';
import type { BackendShape } from './push-format.js';
import { SnapshotFile } from './snapshot-file.js';

export interface NginxDataPlaneOptions {
  /** The plugin's admin endpoint, e.g. http://127.0.0.1:9080. */
  readonly adminUrl: string;
  readonly adminToken: string;
  /** Where to keep the last table for the plugin to load at start (nginx-conf's snapshot file); null: nowhere. */
  readonly snapshotFile: string | null;
}

export class NginxDataPlane implements DataPlane, TrafficSource {
  readonly name = 'nginx';
  /** The split policies nginx applies, by app (md5 of the text), from its last status; null until known. */
  policyDigests: ReadonlyMap<string, string | null> | null = null;
  private readonly traffic = new PluginTraffic();
  private readonly admin: NginxAdmin;
  private readonly plugin: PluginVersionWatch;
  private readonly snapshot: SnapshotFile | null;
  /** How pushes write backends, from the plugin's last status; null until it answered (or after it refused one). */
  private backendShape: BackendShape | null = null;

  constructor(opts: NginxDataPlaneOptions, log: Logger, registry: Registry) {
    this.admin = new NginxAdmin(opts.adminUrl.replace(/\/+$/, ''), opts.adminToken);
    this.plugin = new PluginVersionWatch(log.child({ component: 'plugin' }), registry);
    this.snapshot = opts.snapshotFile ? new SnapshotFile(opts.snapshotFile, log.child({ component: 'snapshot' })) : null;
  }

  async apply(change: TableChange): Promise<ApplyResult> {
    const shape = await this.shapeToPush();
    const result = await this.admin.push(change, shape);
    const bytes = result.bytes ?? 0;
    if (result.ok) return { ok: true, bytes, generation: result.generation ?? null };
    // A plugin replaced by an older one refuses the flat backends: ask it again before the next push.
    if (result.status === 400 && shape === 'flat') this.backendShape = null;
    // 409: the plugin's table is not the push's base.
    return { ok: false, bytes, otherBase: result.status === 409, error: result.error, message: `nginx refused the push (HTTP ${result.status}): ${result.error}` };
  }

  async status(): Promise<DataPlaneStatus> {
    const status = await this.admin.status();
    this.plugin.observe(status.pluginVersion);
    this.backendShape = status.pushFeatures.includes('backendsFlat') ? 'flat' : 'objects';
    this.policyDigests = status.policyDigests;
    return { version: status.version, generation: status.generation };
  }

  inflight(taskIds: readonly string[]): Promise<InflightReport> {
    return this.admin.inflight(taskIds);
  }

  async readTraffic(): Promise<TrafficReading> {
    return this.traffic.read(await this.admin.counters());
  }

  get release(): string | null {
    return this.plugin.pluginVersion;
  }

  holds(table: RoutingTable): void {
    this.snapshot?.save(table, this.backendShape ?? 'objects');
  }

  /** The shape the plugin takes, asking it first when that is not known; objects when it cannot be asked. */
  private async shapeToPush(): Promise<BackendShape> {
    if (this.backendShape === null) await this.status().catch(() => undefined);
    return this.backendShape ?? 'objects';
  }

  async close(): Promise<void> {
    await this.snapshot?.flush();
  }
}
