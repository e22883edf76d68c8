/**
 * The agent's last pushed table, written where the plugin reads it when
 * nginx (re)starts, so a restarted nginx serves before the agent pushes.
 * Written at most every few seconds (a 10,000-app table is megabytes), and
 * atomically: a crash mid-write never leaves half a table.
 */
import { rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { RoutingTable } from '../../core/routing-table.js';
import { pushBodyText, type BackendShape } from './push-format.js';

export class SnapshotFile {
  private pending: RoutingTable | null = null;
  /** As the plugin took the last push: the plugin that reads the file is the one that took it. */
  private shape: BackendShape = 'objects';
  private written: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private lastWriteAt = 0;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly minIntervalMs = 5_000,
  ) {}

  save(table: RoutingTable, shape: BackendShape = 'objects'): void {
    if (table.version === this.written) return;
    this.pending = table;
    this.shape = shape;
    if (this.timer) return;
    const wait = Math.max(0, this.lastWriteAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.writing.then(() => this.writePending());
    }, wait);
  }

  /** Writes what is pending now (on stop). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.writing = this.writing.then(() => this.writePending());
    await this.writing;
  }

  private async writePending(): Promise<void> {
    const table = this.pending;
    this.pending = null;
    if (table === null || table.version === this.written) return;
    this.lastWriteAt = Date.now();
    const temporary = `${this.path}.${process.pid}.tmp`;
    try {
      await writeFile(temporary, pushBodyText({ version: table.version, base: null, apps: table.apps }, this.shape));
      await rename(temporary, this.path);
      this.written = table.version;
    } catch (err) {
      this.log.warn({ path: this.path, err: (err as Error).message }, 'cannot write the routing snapshot');
    }
  }
}
