/**
 * The agent's half of announce-before-kill. It follows the drain marks in
 * Redis (polled, and at once on a PUBLISH), hands them to the reconciler so
 * the tasks leave this node's upstreams, and acknowledges each mark once
 * the data plane holds a table without the task, with the requests it still
 * serves to it. Whoever drains waits for every live node's ack with zero in flight.
 */
import type { Logger } from 'pino';
import type { DrainAck, DrainBoard, DrainMark } from '../fleet/redis-drains.js';
import type { DataPlane, InflightReport } from '../dataplane/data-plane.js';

export interface DrainWatcherDeps {
  readonly board: DrainBoard;
  readonly nodeId: string;
  setDrains(drains: ReadonlyMap<string, string>): void;
  /** The drain marks behind the table the data plane holds; null while unknown. */
  drainsApplied(): ReadonlyMap<string, string> | null;
  pushedVersion(): string | null;
  /** Where the in-flight counts come from. */
  readonly dataPlane: Pick<DataPlane, 'name' | 'inflight'>;
}

export interface DrainWatcherOptions {
  /** How often to read the marks when nothing is being drained. */
  readonly pollMs: number;
  /** How often to re-check while a drain waits for this node. */
  readonly ackMs: number;
}

export const DRAIN_WATCH_DEFAULTS: DrainWatcherOptions = { pollMs: 1_000, ackMs: 100 };

export class DrainWatcher {
  private marks = new Map<string, DrainMark>();
  /** "taskId@markAt" of marks acknowledged with nothing in flight: nothing more to say. */
  private readonly finished = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private failing = false;

  constructor(
    private readonly deps: DrainWatcherDeps,
    private readonly log: Logger,
    private readonly opts: DrainWatcherOptions = DRAIN_WATCH_DEFAULTS,
  ) {}

  /** Starts watching; resolves once the marks were read the first time (or could not be). */
  start(): Promise<void> {
    this.poke();
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  /** Reads the marks now (a PUBLISH said they changed, or a sync finished). */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = this.round().finally(() => {
      this.running = null;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.poke();
        return;
      }
      this.timer = setTimeout(() => this.poke(), this.waiting() ? this.opts.ackMs : this.opts.pollMs);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Task ids drained now, with what for and by whom. */
  get current(): ReadonlyMap<string, DrainMark> {
    return this.marks;
  }

  private waiting(): boolean {
    for (const mark of this.marks.values()) if (!this.finished.has(doneKey(mark))) return true;
    return false;
  }

  private async round(): Promise<void> {
    let marks: Map<string, DrainMark>;
    try {
      marks = await this.deps.board.active();
      if (this.failing) this.log.info('drain marks readable again');
      this.failing = false;
    } catch (err) {
      // Keep the marks we know: un-draining because Redis blinked would route to dying tasks.
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'cannot read drain marks; keeping the last ones');
      this.failing = true;
      return;
    }
    if (!sameMarks(marks, this.marks)) {
      const added = [...marks.values()].filter((m) => this.marks.get(m.taskId)?.at !== m.at);
      const lifted = [...this.marks.keys()].filter((id) => !marks.has(id));
      for (const mark of added) this.log.info({ task: mark.taskId, app: mark.appId, operation: mark.operation, by: mark.by }, 'task drained: leaving the upstream');
      if (lifted.length > 0) this.log.info({ tasks: lifted }, 'drain lifted');
      this.marks = marks;
      for (const key of this.finished) if (!marks.has(key.slice(0, key.lastIndexOf('@')))) this.finished.delete(key);
      this.deps.setDrains(new Map([...marks.values()].map((m) => [m.taskId, `${m.operation} announced by ${m.by}`])));
    }
    await this.acknowledge();
  }

  /** Acks the marks the data plane's table already reflects, with what is still in flight to those tasks. */
  private async acknowledge(): Promise<void> {
    const applied = this.deps.drainsApplied();
    if (applied === null) return;
    const due = [...this.marks.values()].filter((m) => applied.has(m.taskId) && !this.finished.has(doneKey(m)));
    if (due.length === 0) return;
    const version = this.deps.pushedVersion();
    let report: InflightReport;
    try {
      report = await this.deps.dataPlane.inflight(due.map((m) => m.taskId));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, `cannot read in-flight requests from ${this.deps.dataPlane.name}; not acknowledging yet`);
      return;
    }
    const settled = report.settled && report.version === version;
    const now = Date.now();
    const acks = new Map<string, DrainAck>();
    for (const mark of due) {
      const inflight = report.backends.get(mark.taskId) ?? 0;
      acks.set(mark.taskId, { at: now, tableVersion: version, inflight, settled });
    }
    try {
      await this.deps.board.ack(this.deps.nodeId, acks, this.marks);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'drain acknowledgement not written');
      return;
    }
    for (const mark of due) if (settled && acks.get(mark.taskId)?.inflight === 0) this.finished.add(doneKey(mark));
  }
}

function doneKey(mark: DrainMark): string {
  return `${mark.taskId}@${mark.at}`;
}

function sameMarks(a: ReadonlyMap<string, DrainMark>, b: ReadonlyMap<string, DrainMark>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, mark] of a) {
    const other = b.get(id);
    if (!other || other.at !== mark.at || other.operation !== mark.operation || other.by !== mark.by) return false;
  }
  return true;
}
