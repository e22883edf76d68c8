/**
 * An edgeroute nginx node rendered from the real template (renderNginxConf),
 * with what a benchmark of many connections needs that the sandbox does not
 * set: worker_connections, worker_rlimit_nofile (only up to the hard limit,
 * unless nginx may raise it), and `reuseport` on the public listener, so the
 * kernel spreads connections evenly over the workers (without it, one
 * worker may take most of them, and run out of descriptors first).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNginxBinary } from '../../agent/dataplane/nginx/conf/flavor.js';
import { renderNginxConf } from '../../agent/dataplane/nginx/conf/render.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { startNginx, type NginxProcess } from '../../agent/sandbox/nginx-process.js';

export interface EdgeNode {
  readonly publicUrl: string;
  readonly publicPort: number;
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly process: NginxProcess;
  stop(): Promise<void>;
}

export async function startEdgeNode(opts: { workerProcesses: number; workerConnections: number; rlimitNofile?: number; reuseport?: boolean }): Promise<EdgeNode> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-bench-edge-'));
  chmodSync(prefix, 0o755);
  const publicPort = await freePort();
  const adminPort = await freePort();
  const rendered = renderNginxConf({
    outDir: prefix,
    listen: [`127.0.0.1:${publicPort}`],
    adminListen: [`127.0.0.1:${adminPort}`],
    workerProcesses: opts.workerProcesses,
    workerConnections: opts.workerConnections,
    errorLogLevel: 'warn',
  });
  let conf = readFileSync(rendered.confPath, 'utf8');
  if (opts.rlimitNofile !== undefined) {
    if (!/^worker_processes .*;$/m.test(conf)) throw new Error('the rendered nginx.conf has no worker_processes line');
    conf = conf.replace(/^(worker_processes .*;)$/m, `$1\nworker_rlimit_nofile ${opts.rlimitNofile};`);
  }
  if (opts.reuseport) {
    const listen = `listen 127.0.0.1:${publicPort};`;
    if (!conf.includes(listen)) throw new Error('the rendered nginx.conf has no public listen line');
    conf = conf.replace(listen, `listen 127.0.0.1:${publicPort} reuseport;`);
  }
  writeFileSync(rendered.confPath, conf);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const process = await startNginx({ binary: defaultNginxBinary(rendered.flavor), prefix, confPath: rendered.confPath, adminUrl });
  return {
    publicUrl: `http://127.0.0.1:${publicPort}`,
    publicPort,
    adminUrl,
    adminToken: rendered.adminToken,
    process,
    async stop() {
      await process.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
