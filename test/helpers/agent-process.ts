/** Runs `edgeroute agent` as a user would: the bin, flags and env, as a child process. */
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { stopChild } from '../../agent/sandbox/child-process.js';
import { PROJECT_ROOT } from '../../agent/project-paths.js';

// From source (vitest) or from dist/ (npm run chaos).
const BIN = join(PROJECT_ROOT, 'bin', 'edgeroute.js');

export interface AgentProcess {
  readonly pid: number;
  /** Everything the agent logged so far (JSON lines). */
  output(): string;
  stop(): Promise<void>;
}

export function spawnAgent(args: string[], env: Record<string, string>): AgentProcess {
  let output = '';
  // A free port for the API unless the test names one: test files run side by side.
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const child: ResultPromise = execa(process.execPath, [BIN, 'agent', ...listen, ...args], {
    env: { ...env, EDGEROUTE_LOG_LEVEL: 'debug' },
    reject: false,
    all: true,
    buffer: false,
  });
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    pid: child.pid ?? 0,
    output: () => output,
    stop: () => stopChild(child, 'SIGTERM'),
  };
}
