/**
 * Which HAProxy worker the agent talks to, across reloads.
 *
 * A master-worker reload (SIGUSR2, `systemctl reload`, the agent's own)
 * starts a new worker, which takes the listening sockets, the admin socket's
 * among them; the old one finishes what it has and exits. The runtime-API
 * connection the agent keeps open stays with the worker that accepted it:
 * after a reload that old worker answers `show info` with `Stopping: 1`,
 * still takes commands (into a process about to exit), and does not exit
 * while the connection is open. So a `Stopping: 1` means: drop the
 * connection and ask again, which reaches the new worker.
 *
 * What tells a reload from a restart: both give the worker a new `Pid` and
 * `Start_time_sec` (the generation the adapter compares); only a restart
 * changes the master's PID (the pid file). Either way the new worker holds
 * only what its config and map files say.
 *
 * A worker left behind by a reload may still serve requests (to a task being
 * drained, say) until it exits: `oldWorkersAlive()` says so, for the drain
 * acknowledgements, which must not count a task idle meanwhile.
 */
import type { HaproxyRuntime } from './runtime-client.js';

export class WorkerWatch {
  private pid: number | null = null;
  private readonly old = new Set<number>();

  constructor(private readonly runtime: HaproxyRuntime) {}

  /** `show info` from the current worker. */
  async info(): Promise<string> {
    let info = await this.runtime.one('show info');
    if (isStopping(info)) {
      this.runtime.drop();
      info = await this.runtime.one('show info');
    }
    this.saw(info);
    return info;
  }

  /** True while a worker this agent talked to before a reload or restart is still running. */
  oldWorkersAlive(): boolean {
    for (const pid of this.old) {
      if (processAlive(pid)) return true;
      this.old.delete(pid);
    }
    return false;
  }

  private saw(info: string): void {
    const pid = Number(/^Pid: *(\d+)/m.exec(info)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === this.pid) return;
    if (this.pid !== null) this.old.add(this.pid);
    this.pid = pid;
  }
}

export function isStopping(info: string): boolean {
  return /^Stopping: *1\b/m.test(info);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, run by another user (HAProxy's workers may drop to their own).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
