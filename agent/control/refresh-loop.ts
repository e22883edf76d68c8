/**
 * Work that reads some state and acts on it (a folder scan, a Redis read),
 * run one at a time: soon after a poke, and every `intervalMs` in case a
 * poke was missed. The certificate watcher, the ACME manager and an HAProxy
 * node's challenge follower each kept these timers themselves.
 */
export class RefreshLoop {
  private interval: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  private soonAt = Infinity;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  /** `onError` gets what a run throws; the next runs go on. */
  constructor(
    private readonly work: () => Promise<void>,
    private readonly onError: (err: Error) => void,
    private readonly intervalMs: number,
  ) {}

  /** A run now, then one every `intervalMs`. */
  start(): void {
    if (this.stopped || this.interval) return;
    this.interval = setInterval(() => this.poke(0), this.intervalMs);
    // The agent's servers keep the process up; a loop alone never should.
    this.interval.unref();
    this.poke(0);
  }

  /** A run after `delayMs`, unless one is due sooner already (pokes in a burst make one run). */
  poke(delayMs = 0): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    if (this.soon) {
      if (at >= this.soonAt) return;
      clearTimeout(this.soon);
    }
    this.soonAt = at;
    this.soon = setTimeout(() => {
      this.soon = null;
      this.soonAt = Infinity;
      this.running = this.running.then(() => (this.stopped ? undefined : this.work())).catch((err: Error) => this.onError(err));
    }, delayMs);
    this.soon.unref();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** No more runs; resolves when the one under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    if (this.soon) clearTimeout(this.soon);
    this.interval = null;
    this.soon = null;
    await this.running;
  }
}
