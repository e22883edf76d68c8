/** Runs nginx in the foreground from a prefix written by renderNginxConf. */
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild } from './child-process.js';
import { waitFor } from './wait.js';

export interface NginxProcess {
  readonly masterPid: number;
  /** `nginx -s reload`: only the reload-based baseline of the benchmarks does this. */
  reload(): Promise<void>;
  workerPids(): number[];
  errorLog(): string;
  stop(): Promise<void>;
}

/** `readyUrl` answering anything at all means nginx is up (default: the plugin's health probe). */
export async function startNginx(opts: { binary: string; prefix: string; confPath: string; adminUrl?: string; readyUrl?: string }): Promise<NginxProcess> {
  const readyUrl = opts.readyUrl ?? `${opts.adminUrl}/edgeroute/healthz`;
  const child: ResultPromise = execa(opts.binary, ['-p', opts.prefix, '-c', opts.confPath, '-g', 'daemon off;'], {
    reject: false,
    stdio: ['ignore', 'ignore', 'pipe'],
    buffer: { stderr: true },
  });
  const errorLogPath = join(opts.prefix, 'logs', 'error.log');
  await waitFor(`nginx to answer at ${readyUrl}`, async () => {
    if (child.exitCode !== null) {
      const result = await child;
      throw new Error(`nginx exited with code ${result.exitCode}: ${String(result.stderr).trim()}`);
    }
    const res = await fetch(readyUrl);
    await res.body?.cancel();
    return true;
  });
  const masterPid = child.pid ?? 0;
  return {
    masterPid,
    reload: async () => {
      await execa(opts.binary, ['-p', opts.prefix, '-c', opts.confPath, '-s', 'reload']);
    },
    workerPids: () => childPids(masterPid),
    errorLog: () => {
      try {
        return readFileSync(errorLogPath, 'utf8');
      } catch {
        return '';
      }
    },
    stop: () => stopChild(child, 'SIGTERM'),
  };
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
