// `edgeroute haproxy-conf` as an operator runs it, then a real HAProxy started
// on what it wrote: unknown hosts answer 404 over HTTP and TLS, the admin
// socket answers, and a host and a server added at run time route to a real
// backend with no reload (what the agent's HAProxy adapter will do).
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/sandbox/free-port.js';
import { waitFor } from '../../agent/sandbox/wait.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const HAPROXY = '/usr/sbin/haproxy';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-haproxy-'));
  dirs.push(dir);
  return dir;
};
const edgeroute = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [BIN, ...args], { reject: false, env, extendEnv: true });

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** One runtime-API command: the socket closes after the answer (no `prompt`). */
function runtime(socket: string, command: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${command}\n`));
    conn.on('data', (chunk: string) => (answer += chunk));
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    conn.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

function httpGet(port: number, host: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host, ...headers }, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

function httpsGet(port: number, host: string, ca: Buffer): Promise<Answer & { readonly alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', headers: { host }, ca, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      const alpn = (res.socket as import('node:tls').TLSSocket).alpnProtocol;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, alpn }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** HTTP/2 over TLS (ALPN h2), with `host` as :authority. */
function h2Get(port: number, host: string, ca: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca });
    session.on('error', reject);
    const stream = session.request({ ':path': '/', ':authority': host });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.setTimeout(5_000, () => stream.close());
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('error', (err) => {
      session.close();
      reject(err);
    });
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    stream.end();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead, just not reaped yet.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text !== '') out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

describe('edgeroute haproxy-conf', () => {
  it('writes a config, an empty host map and a run folder that haproxy -c passes (--check)', async () => {
    const out = tempDir();
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '127.0.0.1:18180,[::1]:18180', '--backend-pool', '5', '--check']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('Configuration file is valid');
    expect(run.stdout).toContain(`${HAPROXY} -W -f ${out}/haproxy.cfg`);
    expect(run.stdout).toContain(`--haproxy-socket ${out}/run/admin.sock`);
    const cfg = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg).toContain(`stats socket ${out}/run/admin.sock mode 600 level admin expose-fd listeners`);
    expect(cfg).toMatch(/^\s+master-worker$/m);
    expect(cfg).toContain('option idle-close-on-response');
    // It would close idle keep-alive connections at random on a reload, racing the clients' requests (haproxy-reload).
    expect(cfg).not.toMatch(/^\s*close-spread-time /m);
    expect(cfg).toContain('bind 127.0.0.1:18180\n');
    expect(cfg).toContain('bind [::1]:18180\n');
    expect(cfg).toContain(`http-request set-var(txn.edgeroute_backend) var(txn.edgeroute_host),map(${out}/hosts.map)`);
    // Hosts with paths, settings or versions go through the Lua action, loaded from the package.
    expect(cfg).toContain(`lua-load-per-thread ${out}/edgeroute.lua`);
    expect(readFileSync(join(out, 'edgeroute.lua'), 'utf8')).toContain(`rules_map = "${out}/rules.map", https_port = 443`);
    expect(readFileSync(join(out, 'rules.map'), 'utf8')).toBe('');
    expect(readFileSync(join(out, 'versions.map'), 'utf8')).toBe('');
    expect(cfg.match(/^backend pool-\d+\n\s+balance roundrobin$/gm)).toHaveLength(5);
    expect(cfg).not.toContain('backend pool-6');
    expect(readFileSync(join(out, 'hosts.map'), 'utf8')).toBe('');
    expect(statSync(join(out, 'run')).isDirectory()).toBe(true);

    // A second run keeps the map (the agent's once HAProxy runs) and reads EDGEROUTE_* variables.
    writeFileSync(join(out, 'hosts.map'), 'kept.test pool-1\n');
    const again = await edgeroute(['haproxy-conf'], { EDGEROUTE_OUT: out, EDGEROUTE_LISTEN: '18181', EDGEROUTE_BACKEND_POOL: '2' });
    expect(again.exitCode).toBe(0);
    expect(readFileSync(join(out, 'hosts.map'), 'utf8')).toBe('kept.test pool-1\n');
    const cfg2 = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg2).toContain('bind :18181\n');
    expect(cfg2).toContain('backend pool-2\n');
    expect(cfg2).not.toContain('backend pool-3\n');
  });

  it('with --tcp-ports, writes one TCP frontend binding the range, an empty tcp-ports.map and a TCP pool that haproxy -c passes', async () => {
    const out = tempDir();
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '127.0.0.1:18184,[::1]:18184', '--tcp-ports', '20100-20110', '--tcp-backend-pool', '3', '--check']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('TCP ports 20100-20110, 3 TCP pool backends');
    const cfg = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg).toContain('bind 127.0.0.1:20100-20110\n');
    expect(cfg).toContain('bind [::1]:20100-20110\n');
    // An app bound to one address (edgeroute.tcpBind) is looked up by ADDRESS/PORT first, then every app by port.
    expect(cfg).toContain(`set-var(sess.edgeroute_backend) dst,concat(/,sess.edgeroute_port),map(${out}/tcp-ports.map)\n`);
    expect(cfg).toContain(`set-var(sess.edgeroute_backend) dst_port,map(${out}/tcp-ports.map) unless { var(sess.edgeroute_backend) -m found }\n`);
    expect(cfg).toContain('set-var proc.edgeroute_tcp_hosts str(127.0.0.1|::1)\n');
    expect(cfg).not.toContain('proc.edgeroute_tcp_binds');
    expect(cfg).toContain('set-var proc.edgeroute_tcp_ports_from int(20100)');
    expect(cfg).toContain('set-var proc.edgeroute_tcp_ports_to int(20110)');
    expect(cfg.match(/^backend tcp-pool-\d+\n\s+balance roundrobin$/gm)).toHaveLength(3);
    expect(readFileSync(join(out, 'tcp-ports.map'), 'utf8')).toBe('');
    // Without --tcp-ports: no TCP frontend and no map.
    const plain = tempDir();
    expect((await edgeroute(['haproxy-conf', '--out', plain, '--listen', '18185'])).exitCode).toBe(0);
    expect(readFileSync(join(plain, 'haproxy.cfg'), 'utf8')).not.toContain('mode tcp');
    expect(existsSync(join(plain, 'tcp-ports.map'))).toBe(false);
  });

  it('with --request-log, logs every HTTP request and TCP connection at info after the worker\'s PID, and haproxy -c passes; recorded for the agent\'s re-renders', async () => {
    const out = tempDir();
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '127.0.0.1:18186', '--tcp-ports', '20120-20121', '--request-log', '--check']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const cfg = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg).toMatch(/^\s+log stderr format short local0 info$/m);
    expect(cfg).toContain('log-format "%pid %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc');
    expect(cfg).toContain('log-format "%pid %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts');
    expect(JSON.parse(readFileSync(join(out, 'haproxy-conf.json'), 'utf8')).options.requestLog).toBe(true);
    // Without it: proxy and server events only.
    const plain = tempDir();
    expect((await edgeroute(['haproxy-conf', '--out', plain, '--listen', '18187'])).exitCode).toBe(0);
    const plainCfg = readFileSync(join(plain, 'haproxy.cfg'), 'utf8');
    expect(plainCfg).toMatch(/^\s+log stderr format short local0 notice$/m);
    expect(plainCfg).not.toContain('log-format');
  });

  it('with --upstream-idle-timeout, purges idle server connections every eighth of it (the agent reads the delay back), and --retry-unanswered turns on L7 retries but for POST, PATCH and LOCK; haproxy -c passes; both recorded', async () => {
    const out = tempDir();
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '127.0.0.1:18188', '--tcp-ports', '20122-20123', '--upstream-idle-timeout', '2.5', '--retry-unanswered', '--check']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const cfg = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg).toMatch(/^\s+set-var proc\.edgeroute_pool_purge_delay_ms int\(312\)$/m);
    expect(cfg).toMatch(/^\s+retry-on conn-failure empty-response$/m);
    expect(cfg).toMatch(/^\s+http-request disable-l7-retry if \{ method POST PATCH LOCK \}$/m);
    const record = JSON.parse(readFileSync(join(out, 'haproxy-conf.json'), 'utf8')).options;
    expect(record.upstreamIdleTimeoutSeconds).toBe(2.5);
    expect(record.retryUnanswered).toBe(true);
    // By default: 4 s (purged every 500 ms) and no L7 retries.
    const plain = tempDir();
    expect((await edgeroute(['haproxy-conf', '--out', plain, '--listen', '18189'])).exitCode).toBe(0);
    const plainCfg = readFileSync(join(plain, 'haproxy.cfg'), 'utf8');
    expect(plainCfg).toMatch(/^\s+set-var proc\.edgeroute_pool_purge_delay_ms int\(500\)$/m);
    expect(plainCfg).not.toContain('retry-on');
    expect(plainCfg).not.toContain('disable-l7-retry');
  });

  it('writes a systemd unit beside nginx\'s that runs haproxy -Ws on the folder', async (ctx) => {
    const out = tempDir();
    const unitFile = join(out, 'units', 'edgeroute-haproxy.service');
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '18182', '--unit', unitFile]);
    expect(run.exitCode).toBe(0);
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toContain(`ExecStart=${HAPROXY} -Ws -f ${out}/haproxy.cfg -S ${out}/run/master.sock,mode,600`);
    expect(unit).toContain(`ExecStartPre=${HAPROXY} -c -q -f ${out}/haproxy.cfg`);
    expect(unit).toContain('Conflicts=haproxy.service');
    expect(unit).toContain('Type=notify');
    ctx.skip(!existsSync(SYSTEMD_ANALYZE), `${SYSTEMD_ANALYZE} is not installed on this machine (Debian package systemd); the unit was not verified`);
    const verify = await execa(SYSTEMD_ANALYZE, ['verify', './edgeroute-haproxy.service'], { cwd: join(out, 'units'), reject: false });
    expect(verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
  });

  it('exits 1 with haproxy -c output when --check fails', async () => {
    const out = tempDir();
    const bad = join(out, 'bad.pem');
    writeFileSync(bad, 'not a certificate\n');
    const run = await edgeroute(['haproxy-conf', '--out', out, '--listen', '18183', '--tls-listen', '18443', '--tls-cert', bad, '--tls-key', bad, '--check']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('haproxy -c failed');
    expect(run.stderr).toContain('default.pem');
  });

  it.each([
    [['--listen', '80'], 'is required'],
    [['--out', '/tmp/x', '--listen', 'nonsense:'], 'is not PORT, HOST:PORT'],
    [['--out', '/tmp/x', '--tls-listen', '443'], '--tls-listen needs --tls-cert and --tls-key'],
    [['--out', '/tmp/x', '--backend-pool', 'many'], '--backend-pool must be a whole number'],
    [['--out', '/tmp/x', '--backend-pool', '100001'], '--backend-pool must be a whole number from 0 to 100000'],
    [['--out', '/tmp/x', '--admin-socket', '/tmp/with space.sock'], 'holds a space or a special character'],
    [['--out', '/tmp/x', '--admin-socket', `/tmp/${'x'.repeat(120)}.sock`], 'longer than a unix socket path'],
    [['--out', '/tmp/x', '--tcp-ports', '10100-10000'], '--tcp-ports must be FROM-TO'],
    [['--out', '/tmp/x', '--tcp-ports', '10000'], '--tcp-ports must be FROM-TO'],
    [['--out', '/tmp/x', '--tcp-ports', '10000-70000'], '--tcp-ports must be FROM-TO'],
    [['--out', '/tmp/x', '--tcp-backend-pool', '4'], '--tcp-backend-pool is for --tcp-ports'],
    [['--out', '/tmp/x', '--tcp-ports', '10000-10001', '--tcp-backend-pool', 'x'], '--tcp-backend-pool must be a whole number'],
    [['--out', '/tmp/x', '--upstream-idle-timeout', '0'], '--upstream-idle-timeout must be a number ≥ 0.1'],
    [['--out', '/tmp/x', '--upstream-idle-timeout', '5000'], 'the upstream idle timeout must be 0.1 to 3600 seconds'],
    [['--out', '/tmp/x', '--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j with exit code 2 and a message', async (args, message) => {
    const run = await edgeroute(['haproxy-conf', ...args]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(message);
  });
});

describe('a real HAProxy on what haproxy-conf wrote', () => {
  let out: string;
  let http: number;
  let https: number;
  let socket: string;
  let hostsMap: string;
  let ca: Buffer;
  let haproxy: ResultPromise | undefined;
  let stderr = '';
  let master = 0;
  let workers: number[] = [];
  let backend: Server | undefined;
  let backendPort: number;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    out = tempDir();
    socket = join(out, 'admin.sock');
    hostsMap = join(out, 'hosts.map');
    const key = join(out, 'key.pem');
    const cert = join(out, 'cert.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:nobody.test', '-keyout', key, '-out', cert]);
    ca = readFileSync(cert);
    [http, https, backendPort] = [await freePort(), await freePort(), await freePort()];
    const run = await edgeroute([
      'haproxy-conf', '--out', out, '--listen', `127.0.0.1:${http}`, '--admin-socket', socket,
      '--tls-listen', `127.0.0.1:${https}`, '--tls-cert', cert, '--tls-key', key, '--backend-pool', '4', '--check',
    ]);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(statSync(join(out, 'tls', 'default.pem')).mode & 0o777).toBe(0o600);

    backend = createServer((req, res) => {
      seen.push(req.headers);
      res.end(`hello from the backend on ${backendPort}`);
    });
    await new Promise<void>((resolve) => backend?.listen(backendPort, '127.0.0.1', resolve));

    haproxy = execa(HAPROXY, ['-W', '-f', join(out, 'haproxy.cfg')], { reject: false, buffer: false });
    haproxy.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    haproxy.stdout?.resume();
    master = haproxy.pid ?? 0;
    const info = await waitFor('the admin socket to answer show info', async () => {
      const text = await runtime(socket, 'show info');
      return text.includes('Name: HAProxy') ? text : undefined;
    });
    workers = childrenOf(master);
    expect(workers).toHaveLength(1);
    expect(info).toContain(`Pid: ${workers[0]}`);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
    if (haproxy && haproxy.exitCode === null) {
      haproxy.kill('SIGTERM');
      const timer = setTimeout(() => haproxy?.kill('SIGKILL'), 5_000);
      await haproxy;
      clearTimeout(timer);
    }
  });

  it('answers 404 for an unknown host on the HTTP listener', async () => {
    const answer = await httpGet(http, 'nobody.test');
    expect(answer).toEqual({ status: 404, body: 'edgeroute: no app serves this host\n' });
  });

  it('answers 404 for an unknown host over TLS, HTTP/1.1 and HTTP/2', async () => {
    const h1 = await httpsGet(https, 'nobody.test', ca);
    expect(h1.status).toBe(404);
    expect(h1.body).toBe('edgeroute: no app serves this host\n');
    const h2 = await h2Get(https, 'nobody.test', ca);
    expect(h2).toEqual({ status: 404, body: 'edgeroute: no app serves this host\n' });
  });

  it('answers show info and show map on the admin socket', async () => {
    const info = await runtime(socket, 'show info');
    expect(info).toMatch(/^Version: 2\.\d+/m);
    expect(await runtime(socket, `show map ${hostsMap}`)).toBe('\n');
    const maps = await runtime(socket, 'show map');
    expect(maps).toContain(hostsMap);
    const backends = await runtime(socket, 'show backend');
    for (const name of ['edgeroute-no-app', 'pool-1', 'pool-4']) expect(backends).toContain(`${name}\n`);
  });

  it('routes a host and a server added at run time to a real backend, with no reload', async () => {
    expect(await runtime(socket, `add map ${hostsMap} app.test pool-2`)).toBe('\n');
    expect(await runtime(socket, `show map ${hostsMap}`)).toMatch(/^0x[0-9a-f]+ app\.test pool-2$/m);
    // The host has a backend, the backend no server yet.
    expect((await httpGet(http, 'app.test')).status).toBe(503);

    const added = await runtime(socket, `add server pool-2/task-1 127.0.0.1:${backendPort} weight 100 pool-max-conn -1 pool-purge-delay 5s`);
    expect(added).toContain('New server registered.');
    // A new server starts in maintenance.
    expect((await httpGet(http, 'app.test')).status).toBe(503);
    expect(await runtime(socket, 'set server pool-2/task-1 state ready')).toBe('\n');

    const answer = await httpGet(http, 'App.Test:8080', { 'X-Edgeroute-Version': 'forged' });
    expect(answer).toEqual({ status: 200, body: `hello from the backend on ${backendPort}` });
    const headers = seen.at(-1);
    expect(headers?.['x-forwarded-proto']).toBe('http');
    expect(headers?.['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers?.['x-edgeroute-version']).toBeUndefined();
    expect(headers?.host).toBe('App.Test:8080');

    const overTls = await h2Get(https, 'app.test', ca);
    expect(overTls).toEqual({ status: 200, body: `hello from the backend on ${backendPort}` });
    expect(seen.at(-1)?.['x-forwarded-proto']).toBe('https');

    // Other hosts still miss, and the worker never changed.
    expect((await httpGet(http, 'other.test')).status).toBe(404);
    expect(childrenOf(master)).toEqual(workers);
  });

  it('stops on SIGTERM with every process gone', async () => {
    expect(haproxy).toBeDefined();
    const all = [master, ...workers];
    for (const pid of all) expect(alive(pid)).toBe(true);
    haproxy?.kill('SIGTERM');
    const timer = setTimeout(() => haproxy?.kill('SIGKILL'), 5_000);
    const result = await haproxy;
    clearTimeout(timer);
    expect(result?.signal ?? result?.exitCode).not.toBe('SIGKILL');
    await waitFor('every HAProxy process to exit', () => (all.some(alive) ? undefined : true), 5_000);
    expect(stderr).not.toMatch(/\[ALERT\].*(?:Cannot|Failed|unable)/i);
  });
});
