/** The nginx processes benchmarks run besides edgeroute's: fast backends and a plain proxy. */
import Handlebars from 'handlebars';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { freePort } from '../../agent/sandbox/free-port.js';
import { startNginx, type NginxProcess } from '../../agent/sandbox/nginx-process.js';
import { detectFlavor, moduleLines } from '../../agent/dataplane/nginx/conf/flavor.js';

const NGINX = '/usr/sbin/nginx';

export interface StaticBackends {
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

export interface PlainProxy {
  readonly url: string;
  readonly process: NginxProcess;
  /** Rewrites the upstream block and reloads nginx, as reload-based routers do. */
  setUpstream(targets: ReadonlyArray<{ host: string; port: number }>): Promise<void>;
  stop(): Promise<void>;
}

function render(template: string, prefix: string, context: Record<string, unknown>): string {
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  for (const dir of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, 'temp', dir), { recursive: true });
  const text = Handlebars.compile(readFileSync(join(PROJECT_ROOT, 'bench', 'templates', template), 'utf8'), { noEscape: true })({ prefix, ...context });
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, text);
  return confPath;
}

export async function startStaticBackends(count: number, workers = 1): Promise<StaticBackends> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-bench-backends-'));
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const confPath = render('backends.conf.hbs', prefix, { ports, workers });
  const process = await startNginx({ binary: NGINX, prefix, confPath, readyUrl: `http://127.0.0.1:${ports[0]}/` });
  return {
    ports,
    async stop() {
      await process.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function upstreamBlock(targets: ReadonlyArray<{ host: string; port: number }>): string {
  // nginx refuses an empty upstream; a closed port stands in.
  const servers = targets.length > 0 ? targets.map((t) => `    server ${t.host}:${t.port};`) : ['    server 127.0.0.1:1 down;'];
  return `upstream backends {\n${servers.join('\n')}\n    keepalive 256;\n}\n`;
}

export async function startPlainProxy(targets: ReadonlyArray<{ host: string; port: number }>, workers = 1): Promise<PlainProxy> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-bench-plain-'));
  const port = await freePort();
  writeFileSync(join(prefix, 'upstream.conf'), upstreamBlock(targets));
  const confPath = render('plain-proxy.conf.hbs', prefix, { port, workers });
  const url = `http://127.0.0.1:${port}`;
  const process = await startNginx({ binary: NGINX, prefix, confPath, readyUrl: `${url}/` });
  let current = upstreamBlock(targets);
  return {
    url,
    process,
    async setUpstream(next) {
      const block = upstreamBlock(next);
      if (block === current) return;
      current = block;
      writeFileSync(join(prefix, 'upstream.conf'), block);
      await process.reload();
    },
    async stop() {
      await process.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

interface TemplatedNginx {
  readonly url: string;
  readonly process: NginxProcess;
  stop(): Promise<void>;
}

/** nginx from one of bench/templates, listening on a free port given to the template as `port`. */
async function startTemplated(template: string, kind: string, context: Record<string, unknown>): Promise<TemplatedNginx> {
  const prefix = mkdtempSync(join(tmpdir(), `edgeroute-bench-${kind}-`));
  const listen = await freePort();
  const confPath = render(template, prefix, { ...context, port: listen });
  const url = `http://127.0.0.1:${listen}`;
  const process = await startNginx({ binary: NGINX, prefix, confPath, readyUrl: `${url}/` });
  return {
    url,
    process,
    async stop() {
      await process.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** nginx with a no-op Lua handler in each per-request phase the plugin has (access, balancer, log); the balancer picks a fixed peer: the floor of any Lua router. */
export function startLuaFloor(port: number, workers = 1): Promise<TemplatedNginx> {
  return startTemplated('lua-floor.conf.hbs', 'floor', { workers, firstPort: port, moduleLines: moduleLines(detectFlavor() ?? 'debian') });
}

/**
 * nginx that evaluates the dataplane benchmark's ten-rule policy in its own
 * configuration (map, geo, split_clients), no Lua: what reading the values
 * those rules test and matching them costs nginx itself.
 */
export function startNativeRules(ports: readonly number[], workers = 1): Promise<TemplatedNginx> {
  return startTemplated('native-rules.conf.hbs', 'native-rules', { workers, ports });
}

/** nginx with a static certificate and no Lua: the baseline of TLS handshakes. */
export async function startStaticTls(cert: string, key: string, workers = 1): Promise<{ tlsPort: number; process: NginxProcess; stop(): Promise<void> }> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-bench-tls-'));
  const [port, tlsPort] = [await freePort(), await freePort()];
  const confPath = render('tls-static.conf.hbs', prefix, { port, tlsPort, cert, key, workers });
  const process = await startNginx({ binary: NGINX, prefix, confPath, readyUrl: `http://127.0.0.1:${port}/` });
  return {
    tlsPort,
    process,
    async stop() {
      await process.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
