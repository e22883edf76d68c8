/** Runs nginx in the foreground from a prefix written by renderNginxConf. */
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild } from './child-process.js';
import { waitFor } from './wait.js';

export interface NginxProcess {
  readonly masterPid: number;
  workerPids(): number[];
  errorLog(): string;
  stop(): Promise<void>;
}

export async function startNginx(opts: { binary: string; prefix: string; confPath: string; adminUrl: string }): Promise<NginxProcess> {
  const child: ResultPromise = execa(opts.binary, ['-p', opts.prefix, '-c', opts.confPath, '-g', 'daemon off;'], {
    reject: false,
    stdio: ['ignore', 'ignore', 'pipe'],
    buffer: { stderr: true },
  });
  const errorLogPath = join(opts.prefix, 'logs', 'error.log');
  await waitFor('nginx to answer on its admin listener', async () => {
    if (child.exitCode !== null) {
      const result = await child;
      throw new Error(`nginx exited with code ${result.exitCode}: ${String(result.stderr).trim()}`);
    }
    const res = await fetch(`${opts.adminUrl}/edgeroute/healthz`);
    return res.status === 200 || res.status === 503 ? true : undefined;
  });
  const masterPid = child.pid ?? 0;
  return {
    masterPid,
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
