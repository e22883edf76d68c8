// The npm package as a routing node gets it: `npm pack`, then `npm install -g --prefix` of the
// tarball into a scratch prefix, then every command run from that install only (its own
// bin/edgeroute, cwd an empty folder), so a file missing from package.json's "files" fails here.
import { execa, type ResultPromise } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../agent/sandbox/child-process.js';
import { freePort, isPortFree } from '../../agent/sandbox/free-port.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginx, type NginxProcess } from '../../agent/sandbox/nginx-process.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { defaultNginxBinary, detectFlavor } from '../../agent/dataplane/nginx/conf/flavor.js';
import { MarathonSim } from '../sim/marathon-sim.js';

const ROOT = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'edgeroute-package-'));
// Under root, nginx workers run as nobody and must read the installed lua/ and their prefix.
chmodSync(scratch, 0o755);
const PREFIX = join(scratch, 'prefix');
const INSTALLED = join(PREFIX, 'lib', 'node_modules', 'edgeroute');
const BIN = join(PREFIX, 'bin', 'edgeroute');
/** Nothing in it: a command that finds a file through the cwd fails. */
const EMPTY_CWD = join(scratch, 'cwd');
let tarballFiles: string[] = [];

/** The environment without what `npm test` adds (npm_config_* would steer the nested npm). */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^npm_/i.test(key) || key.startsWith('EDGEROUTE_')) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

const installed = (args: string[], env: Record<string, string> = {}) =>
  execa(BIN, args, { cwd: EMPTY_CWD, env: cleanEnv({ EDGEROUTE_ADMIN_TOKEN: '', ...env }), extendEnv: false, reject: false });

/** Every process below `pid` (children of children too), from /proc. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children: number[] = [];
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        continue;
      }
      for (const child of children) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

function isAlive(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const packDir = join(scratch, 'pack');
  for (const dir of [packDir, EMPTY_CWD, PREFIX]) mkdirSync(dir, { recursive: true });
  // `npm pack` would run `prepare` (tsc), rewriting dist/ while other test files run programs from
  // it; `.ci/run` runs `npm pack --dry-run` (with prepare) before the tests instead. Here the
  // checkout's bin builds dist/ only when the sources are newer (a run of this file alone).
  const build = await execa(process.execPath, [join(ROOT, 'bin', 'edgeroute.js'), '--help'], { cwd: ROOT, reject: false, all: true });
  if (build.exitCode !== 0) throw new Error(`building dist/ failed:\n${build.all}`);
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT, env: cleanEnv(), extendEnv: false, reject: false, all: true });
  if (pack.exitCode !== 0) throw new Error(`npm pack failed:\n${pack.all}`);
  const tarball = readdirSync(packDir).find((name) => name.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack wrote no tarball:\n${pack.all}`);
  tarballFiles = (await execa('tar', ['-tzf', join(packDir, tarball)])).stdout
    .split('\n')
    .filter((line) => line && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''));
  // The user's npm cache makes this a few seconds; the registry is asked only for what is missing.
  const install = await execa('npm', ['install', '-g', '--prefix', PREFIX, '--no-audit', '--no-fund', '--prefer-offline', join(packDir, tarball)], {
    cwd: EMPTY_CWD,
    env: cleanEnv(),
    extendEnv: false,
    reject: false,
    all: true,
  });
  if (install.exitCode !== 0) throw new Error(`npm install -g failed:\n${install.all}`);
}, 180_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds what the commands read at run time, and no tests, benchmarks or source maps', () => {
    for (const file of [
      'package.json',
      'bin/edgeroute.js',
      'dist/agent/cli/main.js',
      'schemas/policy.schema.json',
      'agent/api/dashboard/index.html',
      'agent/api/dashboard/dashboard.js',
      'agent/api/dashboard/dashboard.css',
      'lua/edgeroute/plugin.lua',
      'templates/nginx.conf.hbs',
      // `edgeroute demo` runs the Marathon simulator: the one part of test/ that is packed.
      'dist/test/sim/marathon-sim.js',
    ]) {
      expect(tarballFiles, file).toContain(file);
    }
    // Every folder of the checkout that runtime code reads from is packed.
    for (const dir of ['lua', 'templates', 'schemas', 'nginx', 'agent/api/dashboard']) {
      expect(tarballFiles.some((file) => file.startsWith(`${dir}/`)), dir).toBe(true);
    }
    const unwanted = tarballFiles.filter(
      (file) =>
        file.startsWith('dist/bench/') ||
        (file.startsWith('dist/test/') && !file.startsWith('dist/test/sim/')) ||
        file.startsWith('test/') ||
        file.startsWith('bench/') ||
        /\.test\.[jt]s$/.test(file) ||
        file.endsWith('.map') ||
        (file.endsWith('.ts') && !file.endsWith('.d.ts')) ||
        file === 'tsconfig.json' ||
        file.startsWith('node_modules/'),
    );
    expect(unwanted).toEqual([]);
  });

  it('installs a bin that answers --help, and --help for every command it lists', async () => {
    const help = await installed(['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('Usage: edgeroute COMMAND');
    const commands = [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((match) => match[1] as string);
    expect(commands).toEqual(expect.arrayContaining(['agent', 'nginx-conf', 'policy', 'demo']));
    // This covers haproxy-conf, install, ... as soon as the CLI lists them.
    const runs = await Promise.all(commands.map(async (command) => [command, await installed([command, '--help'])] as const));
    for (const [command, run] of runs) {
      expect(run.exitCode, `${command} --help: ${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(`Usage: edgeroute ${command}`);
    }
    // An installed package has no sources: the bin must not try to build.
    expect(existsSync(join(INSTALLED, 'tsconfig.json'))).toBe(false);
  });

  it('prints its version with --version', async (ctx) => {
    // Until the checkout's CLI knows --version, there is nothing to check.
    const checkout = await execa(process.execPath, [join(ROOT, 'dist', 'agent', 'cli', 'main.js'), '--version'], { reject: false });
    if (checkout.exitCode !== 0) ctx.skip();
    const { version } = JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8')) as { version: string };
    const run = await installed(['--version']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain(version);
  });

  it('validates policies against the packed schema: 0 for a good one, 3 for a bad one', async () => {
    const good = join(scratch, 'good-policy.json');
    const bad = join(scratch, 'bad-policy.json');
    writeFileSync(good, JSON.stringify({ default: 'stable', seed: 's', rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }));
    writeFileSync(bad, JSON.stringify({ default: 'stable', rules: [{ name: 'x', match: { percentage: { value: 250 } }, version: 'grey' }], colour: 'red' }));
    const ok = await installed(['policy', 'validate', good]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    const refused = await installed(['policy', 'validate', bad]);
    expect(refused.exitCode, refused.stderr).toBe(3);
    expect(refused.stderr).toContain('is not a valid policy');
    expect(refused.stderr).not.toContain('ENOENT');
  });

  describe('a routing node from the installed package', () => {
    const nginxDir = join(scratch, 'nginx');
    const token = 'package-test-token-0123456789';
    let publicPort = 0;
    let adminPort = 0;
    let nginx: NginxProcess | undefined;
    let marathon: MarathonSim | undefined;
    let agent: ResultPromise | undefined;

    afterAll(async () => {
      if (agent) await stopChild(agent);
      await nginx?.stop();
      await marathon?.stop();
    });

    it('writes an nginx config that passes nginx -t (nginx-conf --check), with the installed Lua', async () => {
      publicPort = await freePort();
      adminPort = await freePort();
      const run = await installed(['nginx-conf', '--out', nginxDir, '--listen', `127.0.0.1:${publicPort}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--check'], {
        EDGEROUTE_ADMIN_TOKEN: token,
      });
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(`${run.stdout}\n${run.stderr}`).toContain('test is successful');
      const conf = readFileSync(join(nginxDir, 'nginx.conf'), 'utf8');
      expect(conf).toContain(`lua_package_path "${join(INSTALLED, 'lua')}/?.lua;;";`);
      expect(conf).not.toContain(ROOT + '/');
    });

    it('writes an HAProxy config that passes haproxy -c (haproxy-conf --check), with the installed template', async () => {
      const haproxyDir = join(scratch, 'haproxy');
      const run = await installed(['haproxy-conf', '--out', haproxyDir, '--listen', `127.0.0.1:${await freePort()}`, '--check']);
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(readFileSync(join(haproxyDir, 'haproxy.cfg'), 'utf8')).toContain('map(');
      expect(existsSync(join(haproxyDir, 'hosts.map'))).toBe(true);
    });

    it('runs an agent that routes a Marathon app and serves its dashboard, /v1/state and /metrics', async () => {
      expect(existsSync(join(nginxDir, 'nginx.conf'))).toBe(true);
      chmodSync(nginxDir, 0o755);
      const flavor = detectFlavor() ?? 'debian';
      nginx = await startNginx({ binary: defaultNginxBinary(flavor), prefix: nginxDir, confPath: join(nginxDir, 'nginx.conf'), adminUrl: `http://127.0.0.1:${adminPort}` });
      marathon = await MarathonSim.start({ heartbeatMs: 500 });
      await marathon.deploy({ id: '/pkg/web', instances: 1, labels: { 'edgeroute.vhosts': 'web.pkg.local' } });
      const apiPort = await freePort();
      agent = execa(
        BIN,
        ['agent', '--marathon', marathon.url, '--nginx-admin', `http://127.0.0.1:${adminPort}`, '--listen', `127.0.0.1:${apiPort}`, '--publish-delay', '0', '--warmup', '0'],
        { cwd: EMPTY_CWD, env: cleanEnv({ EDGEROUTE_ADMIN_TOKEN: token }), extendEnv: false, reject: false, all: true },
      );
      const api = `http://127.0.0.1:${apiPort}`;
      const routed = await waitFor(
        'the installed agent to route the app',
        async () => {
          if (agent?.exitCode !== null) throw new Error(`the agent exited: ${(await agent)?.all}`);
          const reply = await httpGet(`http://127.0.0.1:${publicPort}/`, { host: 'web.pkg.local', timeoutMs: 1000 }).catch(() => undefined);
          return reply?.status === 200 ? reply : undefined;
        },
        20_000,
      );
      expect(routed.body).toMatch(/^pkg_web\./);
      const dashboard = await httpGet(`${api}/`);
      expect(dashboard.status).toBe(200);
      expect(dashboard.headers['content-type']).toContain('text/html');
      // uPlot comes from the installed package's own node_modules: the dashboard needs nothing from the Internet.
      for (const asset of ['/dashboard.js', '/dashboard.css', '/uplot.min.js', '/uplot.min.css']) expect((await httpGet(`${api}${asset}`)).status, asset).toBe(200);
      const state = await httpGet(`${api}/v1/state`);
      expect(state.status).toBe(200);
      expect(state.body).toContain('/pkg/web');
      const metrics = await httpGet(`${api}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('edgeroute_');
      await stopChild(agent);
      expect(agent.exitCode).toBe(0);
    });
  });

  it('runs the demo up to its first routed request, and Ctrl-C stops every process it started', async () => {
    const port = await freePort();
    const demo = execa(BIN, ['demo', '--port', String(port)], { cwd: EMPTY_CWD, env: cleanEnv(), extendEnv: false, reject: false, all: true, buffer: false });
    let output = '';
    demo.all?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await waitFor(
        'the installed demo to be ready',
        () => {
          if (demo.exitCode !== null) throw new Error(`the demo exited with ${demo.exitCode}:\n${output}`);
          return output.includes('edgeroute demo is running') ? true : undefined;
        },
        30_000,
      );
      const web = await httpGet(`http://127.0.0.1:${port}/`, { host: 'web.demo.local' });
      expect(web.status).toBe(200);
      expect(web.body).toMatch(/^demo_web\./);
      const dashboard = /agent dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(output)?.[1];
      expect(dashboard).toBeDefined();
      expect((await httpGet(`${dashboard}/`)).status).toBe(200);
      const started = descendants(demo.pid as number);
      expect(started.length).toBeGreaterThan(1); // redis-server, nginx master and workers
      const redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);

      demo.kill('SIGINT');
      const result = await demo;
      expect(result.exitCode).toBe(0);
      expect(output).toContain('stopped.');
      await waitFor('every process the demo started to be gone', () => (started.every((pid) => !isAlive(pid)) ? true : undefined), 5_000);
      expect(await isPortFree(port)).toBe(true);
      expect(await isPortFree(redisPort)).toBe(true);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
  });
});
