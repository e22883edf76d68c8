/** Runs nginx in the foreground from a prefix written by renderNginxConf. */
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild } from './child-process.js';
import { waitFor } from './wait.js';

export interface NginxProcess {
  /** Changes with upgrade(). */
  readonly masterPid: number;
  /**
   * Restarts nginx without closing its listening sockets: USR2 starts a new
   * master (new binary, new shared memory, fresh Lua state) that inherits
   * them, then QUIT lets the old master finish its requests and leave. This is
   * how to restart nginx without losing a request (`systemctl restart` closes
   * the sockets for a moment).
   */
  upgrade(): Promise<void>;
  /** `nginx -s reload`: only the reload-based baseline of the benchmarks does this. */
  reload(): Promise<void>;
  workerPids(): number[];
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * `readyUrl` answering anything at all means nginx is up (default: the plugin's health probe).
 * `daemon`: let nginx daemonize as a service manager would start it, instead of keeping it in
 * the foreground as our child. Only a daemonized master accepts USR2 (upgrade()): nginx ignores
 * it while the master's parent is the process that started it.
 */
export async function startNginx(opts: { binary: string; prefix: string; confPath: string; adminUrl?: string; readyUrl?: string; daemon?: boolean }): Promise<NginxProcess> {
  const readyUrl = opts.readyUrl ?? `${opts.adminUrl}/edgeroute/healthz`;
  const pidFile = join(opts.prefix, 'nginx.pid');
  const args = ['-p', opts.prefix, '-c', opts.confPath, ...(opts.daemon ? [] : ['-g', 'daemon off;'])];
  const child: ResultPromise = execa(opts.binary, args, { reject: false, stdio: ['ignore', 'ignore', 'pipe'], buffer: { stderr: true } });
  if (opts.daemon) {
    const launched = await child;
    if (launched.exitCode !== 0) throw new Error(`nginx exited with code ${launched.exitCode}: ${String(launched.stderr).trim()}`);
  }
  const errorLogPath = join(opts.prefix, 'logs', 'error.log');
  await waitFor(`nginx to answer at ${readyUrl}`, async () => {
    if (!opts.daemon && child.exitCode !== null) {
      const result = await child;
      throw new Error(`nginx exited with code ${result.exitCode}: ${String(result.stderr).trim()}`);
    }
    const res = await fetch(readyUrl);
    await res.body?.cancel();
    return true;
  });
  let masterPid = opts.daemon ? await waitFor('the nginx pid file', () => readPid(pidFile) ?? undefined) : (child.pid ?? 0);
  const workerCount = (await waitFor('nginx workers', () => (childPids(masterPid).length > 0 ? childPids(masterPid) : undefined))).length;
  return {
    get masterPid() {
      return masterPid;
    },
    reload: async () => {
      await execa(opts.binary, ['-p', opts.prefix, '-c', opts.confPath, '-s', 'reload']);
    },
    upgrade: async () => {
      const old = masterPid;
      process.kill(old, 'SIGUSR2');
      const fresh = await waitFor('the new nginx master', () => {
        const pid = readPid(pidFile);
        return pid !== null && pid !== old && childPids(pid).length >= workerCount ? pid : undefined;
      });
      process.kill(old, 'SIGQUIT');
      await waitFor('the old nginx master to finish', () => (isGone(old) ? true : undefined), 30_000, 100);
      masterPid = fresh;
    },
    workerPids: () => childPids(masterPid),
    errorLog: () => {
      try {
        return readFileSync(errorLogPath, 'utf8');
      } catch {
        return '';
      }
    },
    stop: async () => {
      if (!opts.daemon && masterPid === child.pid) return stopChild(child, 'SIGTERM');
      // A daemonized or upgraded master is not our child: stop it by PID.
      await child.catch(() => undefined);
      const pid = masterPid;
      if (isGone(pid)) return;
      process.kill(pid, 'SIGTERM');
      await waitFor('nginx to stop', () => (isGone(pid) ? true : undefined), 10_000, 50).catch(() => process.kill(pid, 'SIGKILL'));
    },
  };
}

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Exited (a zombie waiting for its parent counts as gone). */
function isGone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}
