/** wrk running until told to stop (SIGINT makes it print its report). */
import { execa } from 'execa';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { parseWrk, type WrkResult } from './wrk.js';

export const POST_SCRIPT = join(PROJECT_ROOT, 'bench', 'lib', 'post.lua');

export function startWrk(url: string, host: string, connections: number, script?: string): { stop(): Promise<WrkResult> } {
  const args = ['-t', '1', '-c', String(connections), '-d', '3600s', '--latency', '--timeout', '10s', '-H', `Host: ${host}`];
  if (script) args.push('-s', script);
  const child = execa('wrk', [...args, url], { reject: false });
  return {
    async stop() {
      child.kill('SIGINT');
      const { stdout } = await child;
      return parseWrk(String(stdout));
    },
  };
}
