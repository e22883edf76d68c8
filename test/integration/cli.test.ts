// The CLI as an operator runs it: `npx edgeroute ...` through the package bin.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { freePort, isPortFree } from '../../agent/sandbox/free-port.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { startNginx } from '../../agent/sandbox/nginx-process.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-cli-'));
  dirs.push(dir);
  return dir;
};
const edgeroute = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [BIN, ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '', ...env }, extendEnv: true });

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('edgeroute nginx-conf', () => {
  it('writes a config that nginx -t accepts, with the token file private', async () => {
    const out = tempDir();
    const run = await edgeroute(['nginx-conf', '--out', out, '--listen', '127.0.0.1:18080', '--admin-listen', '127.0.0.1:18081'], {
      EDGEROUTE_ADMIN_TOKEN: 'a-token-of-at-least-16-chars',
    });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain(`-p ${out} -c ${out}/nginx.conf`);
    const conf = readFileSync(join(out, 'nginx.conf'), 'utf8');
    expect(conf).toContain('load_module /usr/lib/nginx/modules/ndk_http_module.so;');
    expect(conf).toContain('listen 127.0.0.1:18080;');
    expect(conf).toMatch(/lua_package_path "\/.+\/lua\/\?\.lua;;";/);
    // nginx closes idle connections to tasks after 4 s, before Node's or uvicorn's 5 s would (test upstream-idle-close).
    expect(conf).toMatch(/\n\s+keepalive 256;\n(\s+#.*\n)*\s+keepalive_timeout 4s;\n/);
    expect(readFileSync(join(out, 'admin-token'), 'utf8').trim()).toBe('a-token-of-at-least-16-chars');
    expect(statSync(join(out, 'admin-token')).mode & 0o777).toBe(0o600);
    const check = await execa('/usr/sbin/nginx', ['-t', '-p', out, '-c', join(out, 'nginx.conf')], { reject: false });
    expect(check.stderr).toContain('test is successful');
  });

  it('generates a token when none is given and says how to hand it to the agent', async () => {
    const out = tempDir();
    const run = await edgeroute(['nginx-conf', '--out', out, '--listen', '18080']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('export EDGEROUTE_ADMIN_TOKEN=$(cat');
    expect(readFileSync(join(out, 'admin-token'), 'utf8').trim()).toMatch(/^[0-9a-f]{48}$/);
  });

  it('reads flags from EDGEROUTE_* variables', async () => {
    const out = tempDir();
    const run = await edgeroute(['nginx-conf'], { EDGEROUTE_OUT: out, EDGEROUTE_LISTEN: '127.0.0.1:18090,127.0.0.2:18090', EDGEROUTE_FLAVOR: 'openresty' });
    expect(run.exitCode).toBe(0);
    const conf = readFileSync(join(out, 'nginx.conf'), 'utf8');
    expect(conf).toContain('listen 127.0.0.1:18090;');
    expect(conf).toContain('listen 127.0.0.2:18090;');
    expect(conf).not.toContain('load_module');
  });

  it.each([
    [['--listen', '80'], 'is required'],
    [['--out', '/tmp/x', '--admin-listen', '0.0.0.0:8081'], 'not a loopback address'],
    [['--out', '/tmp/x', '--listen', 'nonsense:'], 'is not PORT, HOST:PORT'],
    [['--out', '/tmp/x', '--flavor', 'apache'], '--flavor must be'],
    [['--out', '/tmp/x', '--upstream-idle-timeout', '0'], '--upstream-idle-timeout must be a number ≥ 0.1'],
    [['--out', '/tmp/x', '--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j with exit code 2 and a message', async (args, message) => {
    const run = await edgeroute(['nginx-conf', ...args]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(message);
  });
});

describe('edgeroute nginx-conf: TLS, real IP, --check, --config', () => {
  it('serves HTTPS with the given certificate, trusts the given proxies, and passes nginx -t', async () => {
    const out = tempDir();
    const key = join(out, 'key.pem');
    const cert = join(out, 'cert.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:nobody.test', '-keyout', key, '-out', cert]);
    const [http, https, admin] = [await freePort(), await freePort(), await freePort()];
    const run = await edgeroute(
      ['nginx-conf', '--out', out, '--listen', `127.0.0.1:${http}`, '--tls-listen', `127.0.0.1:${https}`, '--tls-cert', cert, '--tls-key', key, '--admin-listen', `127.0.0.1:${admin}`, '--real-ip-from', '127.0.0.1/32,10.0.0.0/8', '--check'],
      { EDGEROUTE_ADMIN_TOKEN: 'a-token-of-at-least-16-chars' },
    );
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('test is successful');
    const conf = readFileSync(join(out, 'nginx.conf'), 'utf8');
    expect(conf).toContain(`listen 127.0.0.1:${https} ssl http2;`);
    expect(conf).toContain('set_real_ip_from 10.0.0.0/8;');
    expect(conf).toContain('real_ip_header X-Forwarded-For;');

    const nginx = await startNginx({ binary: '/usr/sbin/nginx', prefix: out, confPath: join(out, 'nginx.conf'), adminUrl: `http://127.0.0.1:${admin}` });
    try {
      const { request } = await import('node:https');
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: https, path: '/', headers: { host: 'nobody.test' }, ca: readFileSync(cert) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(503); // the plugin answers over TLS; no table was pushed yet
    } finally {
      await nginx.stop();
    }
  });

  it('exits 1 with nginx -t output when --check fails', async () => {
    const out = tempDir();
    const bad = join(out, 'bad.pem');
    writeFileSync(bad, 'not a certificate');
    const run = await edgeroute(['nginx-conf', '--out', out, '--listen', '18080', '--tls-listen', '18443', '--tls-cert', bad, '--tls-key', bad, '--check']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('nginx -t failed');
  });

  it('reads a config file, with flags and the environment winning', async () => {
    const out = tempDir();
    const file = join(out, 'edgeroute.json');
    writeFileSync(file, JSON.stringify({ 'nginx-conf': { out, listen: ['127.0.0.1:18095'], 'dict-size': '32m' }, agent: { marathon: 'http://m1:8080' } }));
    let run = await edgeroute(['nginx-conf', '--config', file, '--dict-size', '16m']);
    expect(run.exitCode).toBe(0);
    const conf = readFileSync(join(out, 'nginx.conf'), 'utf8');
    expect(conf).toContain('listen 127.0.0.1:18095;');
    expect(conf).toContain('lua_shared_dict edgeroute 16m;');
    writeFileSync(file, JSON.stringify({ 'nginx-conf': { out, lisen: '80' } }));
    run = await edgeroute(['nginx-conf'], { EDGEROUTE_CONFIG: file });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('"nginx-conf" has no option "lisen"');
  });

  it('writes what nginx/example-nginx.conf shows for nginx/edgeroute.json (the example is not stale)', async () => {
    const root = join(import.meta.dirname, '..', '..');
    const out = tempDir();
    const tls = tempDir();
    writeFileSync(join(tls, 'cert.pem'), '');
    writeFileSync(join(tls, 'key.pem'), '');
    const run = await edgeroute(['nginx-conf', '--config', join(root, 'nginx', 'edgeroute.json'), '--out', out, '--flavor', 'debian', '--tls-cert', join(tls, 'cert.pem'), '--tls-key', join(tls, 'key.pem')]);
    expect(run.exitCode).toBe(0);
    const written = readFileSync(join(out, 'nginx.conf'), 'utf8')
      .replaceAll(out, '/etc/edgeroute/nginx')
      .replaceAll(tls, '/etc/edgeroute/tls')
      .replaceAll(join(root, 'lua'), '/opt/edgeroute/lua');
    const example = readFileSync(join(root, 'nginx', 'example-nginx.conf'), 'utf8');
    // The example's first two lines say where it comes from.
    expect(example.split('\n').slice(2).join('\n')).toBe(written);
  });
});

describe('edgeroute agent', () => {
  it('explains a missing token or Marathon URL with exit code 2', async () => {
    let run = await edgeroute(['agent', '--marathon', 'http://127.0.0.1:1']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('EDGEROUTE_ADMIN_TOKEN');
    run = await edgeroute(['agent'], { EDGEROUTE_ADMIN_TOKEN: 'x'.repeat(20) });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('--marathon (or EDGEROUTE_MARATHON) is required');
  });

  it('has --help for every command', async () => {
    for (const command of ['agent', 'nginx-conf', 'policy', 'watch', 'demo']) {
      const run = await edgeroute([command, '--help']);
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain(`Usage: edgeroute ${command}`);
    }
    const unknown = await edgeroute(['frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('edgeroute demo', () => {
  it('runs the sandbox, routes the sample apps, and stops every process on Ctrl-C', async () => {
    const port = await freePort();
    const demo = execa(process.execPath, [BIN, 'demo', '--port', String(port)], { reject: false, all: true, buffer: false });
    let output = '';
    demo.all?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await waitFor('the demo to be ready', () => (output.includes('edgeroute demo is running') ? true : undefined), 30_000);
      const web = await httpGet(`http://127.0.0.1:${port}/`, { host: 'web.demo.local' });
      expect(web.status).toBe(200);
      expect(web.body).toMatch(/^demo_web\./);
      const api = await httpGet(`http://127.0.0.1:${port}/`, { host: 'api.demo.local' });
      expect(api.body).toMatch(/^demo_api\./);
      const auth = await httpGet(`http://127.0.0.1:${port}/auth/login`, { host: 'web.demo.local' });
      expect(auth.body).toMatch(/^demo_auth\./);
      const tester = await waitFor('the demo policy', async () => {
        const reply = await httpGet(`http://127.0.0.1:${port}/`, { host: 'shop.demo.local', headers: { cookie: 'grey=1' } });
        return reply.headers['x-edgeroute-version'] === 'grey' ? reply : undefined;
      });
      expect(tester.body).toMatch(/^demo_shop-grey\./);
      expect(output).toContain(`curl -H 'Host: web.demo.local' http://127.0.0.1:${port}/`);
      const masterPid = Number(/nginx master pid (\d+)/.exec(output)?.[1]);
      const redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      expect(redisPort).toBeGreaterThan(0);
      expect(masterPid).toBeGreaterThan(0);

      demo.kill('SIGINT');
      const result = await demo;
      expect(result.exitCode).toBe(0);
      expect(output).toContain('stopped.');
      expect(() => process.kill(masterPid, 0)).toThrow();
      await expect(httpGet(`http://127.0.0.1:${port}/`, { host: 'web.demo.local', timeoutMs: 1000 })).rejects.toThrow();
      expect(await isPortFree(redisPort)).toBe(true);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
  });
});
