// `edgeroute install` into a scratch root (--root), as an image build would
// run it: the files, their modes and intended owners, the units, log
// rotation, nginx -t, a second run that changes nothing, and --dry-run. It
// never runs without --root: that would change this machine.
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderUnits } from '../../agent/install/system-files.js';
import { AGENT_NODE_OPTIONS } from '../../bench/scale.js';

const REPO = join(import.meta.dirname, '..', '..');
const BIN = join(REPO, 'bin', 'edgeroute.js');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const NGINX = '/usr/sbin/nginx';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-install-'));
  dirs.push(dir);
  return dir;
};
const edgeroute = (args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '' }, extendEnv: true });

/** A node's config: the two sections install reads, ports a test machine does not mind. */
function writeConfig(dir: string, listen = '80'): string {
  const file = join(dir, 'node.json');
  const config = {
    'nginx-conf': { listen: [listen], 'admin-listen': ['127.0.0.1:8081'], redis: 'redis://127.0.0.1:6379/0' },
    agent: { marathon: 'http://127.0.0.1:8080', redis: 'redis://127.0.0.1:6379/0' },
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** "write /ROOT/etc/edgeroute/agent.env  0640 root:edgeroute  (new)" → path → { verb, mode, owner }. */
function printedFiles(stdout: string, root: string): Map<string, { verb: string; mode: string; owner: string }> {
  const files = new Map<string, { verb: string; mode: string; owner: string }>();
  for (const line of stdout.split('\n')) {
    const match = /^\s+((?:would )?\w+)\s+(\/\S+)\s+(\d{4}) (\S+:\S+)/.exec(line);
    if (match && match[2]!.startsWith(root)) files.set(match[2]!.slice(root.length), { verb: match[1]!, mode: match[3]!, owner: match[4]! });
  }
  return files;
}

function listTree(dir: string, into = new Map<string, number>()): Map<string, number> {
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, item.name);
    into.set(path, statSync(path).mtimeMs);
    if (item.isDirectory()) listTree(path, into);
  }
  return into;
}

const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8).padStart(4, '0');

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('edgeroute install --root', () => {
  let work: string;
  let root: string;
  let config: string;
  let first: Awaited<ReturnType<typeof edgeroute>>;
  const at = (path: string) => join(root, path);

  beforeAll(async () => {
    work = tempDir();
    root = join(work, 'root');
    config = writeConfig(work);
    first = await edgeroute(['install', '--config', config, '--root', root]);
  });

  it('writes every file with its mode, and prints the owner each one gets on the node', () => {
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const printed = printedFiles(first.stdout, root);
    const expected: Record<string, [string, string]> = {
      '/etc/edgeroute': ['0755', 'root:root'],
      '/etc/edgeroute/edgeroute.json': ['0640', 'root:edgeroute'],
      '/etc/edgeroute/agent.env': ['0640', 'root:edgeroute'],
      '/etc/edgeroute/nginx': ['0755', 'root:root'],
      '/etc/edgeroute/nginx/nginx.conf': ['0644', 'root:root'],
      '/etc/edgeroute/nginx/admin-token': ['0600', 'root:root'],
      '/etc/edgeroute/nginx/logs': ['0755', 'root:root'],
      '/etc/edgeroute/nginx/temp/proxy': ['0755', 'root:root'],
      '/var/lib/edgeroute': ['0750', 'edgeroute:edgeroute'],
      '/etc/systemd/system/edgeroute-nginx.service': ['0644', 'root:root'],
      '/etc/systemd/system/edgeroute-agent.service': ['0644', 'root:root'],
      '/etc/logrotate.d/edgeroute': ['0644', 'root:root'],
    };
    for (const [path, [wantMode, owner]] of Object.entries(expected)) {
      expect(printed.get(path), path).toMatchObject({ mode: wantMode, owner });
      expect(printed.get(path)?.verb, path).toMatch(/^(write|mkdir)$/);
      expect(mode(at(path)), path).toBe(wantMode);
    }
    expect(readFileSync(at('/etc/edgeroute/edgeroute.json'), 'utf8')).toBe(readFileSync(config, 'utf8'));
  });

  it('creates the edgeroute account on the node, and says so instead of doing it under --root', () => {
    expect(first.stdout).toMatch(/not run\s+groupadd --system edgeroute\s+\(--root/);
    expect(first.stdout).toMatch(/not run\s+useradd --system --gid edgeroute --no-create-home --home-dir \/nonexistent --shell \/usr\/sbin\/nologin .* edgeroute\s+\(--root/);
  });

  it("lists the systemctl steps: Debian's nginx.service disabled and stopped, the units enabled and started", () => {
    const steps = first.stdout.split('\n').filter((line) => line.includes('systemctl')).map((line) => line.replace(/^\s+not run\s+/, '').replace(/\s+\(--root.*$/, ''));
    expect(steps).toEqual([
      'systemctl daemon-reload',
      'systemctl disable --now nginx.service',
      'systemctl enable edgeroute-nginx.service edgeroute-agent.service',
      'systemctl start edgeroute-nginx.service',
      'systemctl start edgeroute-agent.service',
    ]);
  });

  it('gives the agent the admin token and the snapshot nginx loads, readable by its group only', () => {
    const token = readFileSync(at('/etc/edgeroute/nginx/admin-token'), 'utf8').trim();
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    const env = readFileSync(at('/etc/edgeroute/agent.env'), 'utf8');
    expect(env).toContain(`EDGEROUTE_ADMIN_TOKEN=${token}\n`);
    expect(env).toContain('EDGEROUTE_SNAPSHOT_FILE=/var/lib/edgeroute/snapshot.ndjson\n');
    expect(mode(at('/etc/edgeroute/agent.env'))).toBe('0640');
    // The paths in nginx.conf are the node's, not the scratch root's.
    const conf = readFileSync(at('/etc/edgeroute/nginx/nginx.conf'), 'utf8');
    expect(conf).toContain('pid /etc/edgeroute/nginx/nginx.pid;');
    expect(conf).toContain('snapshot_file = "/var/lib/edgeroute/snapshot.ndjson"');
    expect(conf).toContain('token_file = "/etc/edgeroute/nginx/admin-token"');
    expect(conf).not.toContain(root);
  });

  it('writes units that conflict with the stock nginx.service, run the agent as edgeroute, and start this package', () => {
    const nginxUnit = readFileSync(at('/etc/systemd/system/edgeroute-nginx.service'), 'utf8');
    expect(nginxUnit).toMatch(/^Conflicts=nginx\.service$/m);
    expect(nginxUnit).toMatch(/^After=network-online\.target nginx\.service$/m);
    expect(nginxUnit).toMatch(/^ExecStart=\/usr\/sbin\/nginx -p \/etc\/edgeroute\/nginx -c \/etc\/edgeroute\/nginx\/nginx\.conf$/m);
    expect(nginxUnit).toMatch(/^PIDFile=\/etc\/edgeroute\/nginx\/nginx\.pid$/m);
    expect(nginxUnit).not.toMatch(/^User=/m);

    const agentUnit = readFileSync(at('/etc/systemd/system/edgeroute-agent.service'), 'utf8');
    expect(agentUnit).toMatch(/^User=edgeroute$/m);
    expect(agentUnit).toMatch(/^Group=edgeroute$/m);
    expect(agentUnit).toMatch(/^After=network-online\.target edgeroute-nginx\.service$/m);
    expect(agentUnit).toMatch(/^EnvironmentFile=\/etc\/edgeroute\/agent\.env$/m);
    expect(agentUnit).toMatch(/^StateDirectory=edgeroute$/m);
    // The heap settings the scale benchmark measures, overridable from agent.env (read after).
    expect(agentUnit).toMatch(new RegExp(`^Environment=NODE_OPTIONS=${AGENT_NODE_OPTIONS}\\nEnvironmentFile=`, 'm'));
    // The package's own bin, wherever it is installed, run by the node that ran install.
    expect(agentUnit).toContain(`\nExecStart=${process.execPath} ${BIN} agent --config /etc/edgeroute/edgeroute.json\n`);
  });

  it('rotates the logs under the nginx prefix and has nginx reopen them', () => {
    const logrotate = readFileSync(at('/etc/logrotate.d/edgeroute'), 'utf8');
    expect(logrotate).toMatch(/^\/etc\/edgeroute\/nginx\/logs\/\*\.log \{$/m);
    expect(logrotate).toContain('[ ! -f /etc/edgeroute/nginx/nginx.pid ] || /usr/sbin/nginx -p /etc/edgeroute/nginx -c /etc/edgeroute/nginx/nginx.conf -s reopen');
    expect(logrotate).toMatch(/postrotate[\s\S]+endscript\n\}/);
  });

  it('writes units that systemd-analyze verify accepts', async (ctx) => {
    ctx.skip(!existsSync(SYSTEMD_ANALYZE), `${SYSTEMD_ANALYZE} is not installed on this machine (Debian package systemd); the units were not verified`);
    const units = at('/etc/systemd/system');
    const verify = await execa(SYSTEMD_ANALYZE, ['verify', './edgeroute-nginx.service', './edgeroute-agent.service'], { cwd: units, reject: false });
    expect(verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
  });

  it('writes an nginx.conf that nginx -t passes (moved under the scratch root)', async () => {
    // nginx.conf names the node's paths; point them into the scratch root to test it here.
    const relocated = readFileSync(at('/etc/edgeroute/nginx/nginx.conf'), 'utf8').replaceAll('/etc/edgeroute/', at('/etc/edgeroute/')).replaceAll('/var/lib/edgeroute/', at('/var/lib/edgeroute/'));
    const conf = join(work, 'relocated-nginx.conf');
    writeFileSync(conf, relocated);
    const check = await execa(NGINX, ['-t', '-p', at('/etc/edgeroute/nginx'), '-c', conf], { reject: false });
    expect(check.stderr).toContain('test is successful');
  });

  it('changes nothing when run again, and says so', async () => {
    const before = listTree(root);
    const again = await edgeroute(['install', '--config', config, '--root', root]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('nothing to change');
    expect(again.stdout).not.toMatch(/^\s+(write|mkdir|chmod|chown)\s/m);
    expect(again.stdout).not.toContain('daemon-reload');
    expect(listTree(root)).toEqual(before);
  });

  it('applies a changed config: rewrites what it changes, keeps the admin token', async () => {
    const token = readFileSync(at('/etc/edgeroute/nginx/admin-token'), 'utf8');
    const changed = writeConfig(tempDir(), '8088');
    const run = await edgeroute(['install', '--config', changed, '--root', root]);
    expect(run.exitCode).toBe(0);
    const written = [...printedFiles(run.stdout, root)].filter(([, file]) => file.verb !== 'keep').map(([path]) => path);
    expect(written.sort()).toEqual(['/etc/edgeroute/edgeroute.json', '/etc/edgeroute/nginx/nginx.conf']);
    expect(readFileSync(at('/etc/edgeroute/nginx/admin-token'), 'utf8')).toBe(token);
    expect(readFileSync(at('/etc/edgeroute/nginx/nginx.conf'), 'utf8')).toContain('listen 8088;');
  });
});

describe('edgeroute install --dry-run', () => {
  it('prints every file and command and writes nothing', async () => {
    const work = tempDir();
    const root = join(work, 'root');
    mkdirSync(root);
    const run = await edgeroute(['install', '--config', writeConfig(work), '--root', root, '--dry-run']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('dry run');
    expect(readdirSync(root)).toEqual([]);
    const printed = printedFiles(run.stdout, root);
    expect(printed.get('/etc/edgeroute/agent.env')).toEqual({ verb: 'would write', mode: '0640', owner: 'root:edgeroute' });
    expect(printed.get('/etc/systemd/system/edgeroute-agent.service')).toEqual({ verb: 'would write', mode: '0644', owner: 'root:root' });
    expect(printed.get('/var/lib/edgeroute')).toEqual({ verb: 'would mkdir', mode: '0750', owner: 'edgeroute:edgeroute' });
    expect(run.stdout).toContain('systemctl disable --now nginx.service');
    expect(run.stdout).toContain('would make');
  });
});

describe('edgeroute install: refusals', () => {
  it.each([
    [{ agent: { marathon: 'http://m:8080', 'snapshot-file': '/etc/edgeroute/nginx/snapshot.ndjson' } }, 'must be in /var/lib/edgeroute/'],
    [{ 'nginx-conf': { 'snapshot-file': '/var/lib/edgeroute/a.ndjson' }, agent: { marathon: 'http://m:8080', 'snapshot-file': '/var/lib/edgeroute/b.ndjson' } }, 'must be the same file'],
    [{ 'nginx-conf': {} }, '--marathon (or EDGEROUTE_MARATHON) is required'],
    [{ 'nginx-conf': { lisen: ['80'] }, agent: { marathon: 'http://m:8080' } }, '"nginx-conf" has no option "lisen"'],
  ])('refuses %j with exit code 2 and writes nothing', async (config, message) => {
    const work = tempDir();
    const file = join(work, 'node.json');
    writeFileSync(file, JSON.stringify(config));
    const run = await edgeroute(['install', '--config', file, '--root', join(work, 'root')]);
    expect(run.stderr).toContain(message);
    expect(run.exitCode).toBe(2);
    expect(existsSync(join(work, 'root'))).toBe(false);
  });

  it('needs --config', async () => {
    const run = await edgeroute(['install', '--root', tempDir(), '--dry-run']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('--config FILE is required');
  });
});

describe('nginx/*.service', () => {
  it('are the templates install renders, for a package installed with npm install -g into /usr (the examples are not stale)', () => {
    const units = renderUnits({
      node: '/usr/bin/node',
      bin: '/usr/lib/node_modules/edgeroute/bin/edgeroute.js',
      nginx: '/usr/sbin/nginx',
      prefix: '/etc/edgeroute/nginx',
      confPath: '/etc/edgeroute/nginx/nginx.conf',
      configFile: '/etc/edgeroute/edgeroute.json',
      envFile: '/etc/edgeroute/agent.env',
      stateDir: '/var/lib/edgeroute',
      user: 'edgeroute',
    });
    for (const unit of units) expect(readFileSync(join(REPO, 'nginx', unit.name), 'utf8'), unit.name).toBe(unit.content);
  });
});

describe('edgeroute install --data-plane haproxy --root', () => {
  let work: string;
  let root: string;
  let config: string;
  let first: Awaited<ReturnType<typeof edgeroute>>;
  const at = (path: string) => join(root, path);
  const DIR = '/etc/edgeroute/haproxy';

  /** An HAProxy node's config: "haproxy-conf" instead of "nginx-conf". */
  function writeHaproxyConfig(dir: string, listen = '80'): string {
    const file = join(dir, 'node.json');
    const node = {
      'haproxy-conf': { listen: [listen], 'tcp-ports': '10000-10010', 'backend-pool': '16' },
      agent: { marathon: 'http://127.0.0.1:8080', redis: 'redis://127.0.0.1:6379/0' },
    };
    writeFileSync(file, `${JSON.stringify(node, null, 2)}\n`);
    return file;
  }

  beforeAll(async () => {
    work = tempDir();
    root = join(work, 'root');
    config = writeHaproxyConfig(work);
    first = await edgeroute(['install', '--data-plane', 'haproxy', '--config', config, '--root', root]);
  });

  it("writes HAProxy's folder, the agent's secrets and both units, with their modes and owners", () => {
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const printed = printedFiles(first.stdout, root);
    const expected: Record<string, [string, string]> = {
      '/etc/edgeroute/edgeroute.json': ['0640', 'root:edgeroute'],
      '/etc/edgeroute/agent.env': ['0640', 'root:edgeroute'],
      [DIR]: ['0755', 'root:root'],
      [`${DIR}/run`]: ['0755', 'root:root'],
      [`${DIR}/haproxy.cfg`]: ['0644', 'root:root'],
      [`${DIR}/hosts.map`]: ['0644', 'root:root'],
      [`${DIR}/tcp-ports.map`]: ['0644', 'root:root'],
      '/var/lib/edgeroute': ['0750', 'edgeroute:edgeroute'],
      '/etc/systemd/system/edgeroute-haproxy.service': ['0644', 'root:root'],
      '/etc/systemd/system/edgeroute-agent.service': ['0644', 'root:root'],
    };
    for (const [path, [wantMode, owner]] of Object.entries(expected)) {
      expect(printed.get(path), path).toMatchObject({ mode: wantMode, owner });
      expect(mode(at(path)), path).toBe(wantMode);
    }
    // Nothing of an nginx node.
    expect([...printed.keys()].filter((path) => /nginx|logrotate/.test(path))).toEqual([]);
    expect(readFileSync(at('/etc/edgeroute/agent.env'), 'utf8')).toMatch(/^EDGEROUTE_API_TOKEN=[0-9a-f]{48}$/m);
  });

  it("gives the agent's group the admin socket and runs HAProxy's workers as haproxy", () => {
    const cfg = readFileSync(at(`${DIR}/haproxy.cfg`), 'utf8');
    expect(cfg).toContain(`stats socket ${DIR}/run/admin.sock mode 660 level admin expose-fd listeners group edgeroute`);
    expect(cfg).toMatch(/^\s+user haproxy$/m);
    expect(cfg).not.toContain(root);
  });

  it('writes a unit for HAProxy beside the agent, which drives it through the admin socket', () => {
    const haproxyUnit = readFileSync(at('/etc/systemd/system/edgeroute-haproxy.service'), 'utf8');
    expect(haproxyUnit).toMatch(/^Conflicts=haproxy\.service$/m);
    expect(haproxyUnit).toContain(`\nExecStart=/usr/sbin/haproxy -Ws -f ${DIR}/haproxy.cfg -S ${DIR}/run/master.sock,mode,600\n`);
    const agentUnit = readFileSync(at('/etc/systemd/system/edgeroute-agent.service'), 'utf8');
    expect(agentUnit).toMatch(/^User=edgeroute$/m);
    expect(agentUnit).toMatch(/^Description=edgeroute agent: keeps HAProxy in sync with Marathon$/m);
    expect(agentUnit).toMatch(/^After=network-online\.target edgeroute-haproxy\.service$/m);
    expect(agentUnit).toContain(`\nExecStart=${process.execPath} ${BIN} agent --config /etc/edgeroute/edgeroute.json --haproxy-socket ${DIR}/run/admin.sock\n`);
  });

  it("lists the systemctl steps: Debian's haproxy.service disabled and stopped, the units enabled and started", () => {
    const steps = first.stdout.split('\n').filter((line) => line.includes('systemctl')).map((line) => line.replace(/^\s+not run\s+/, '').replace(/\s+\(--root.*$/, ''));
    expect(steps).toEqual([
      'systemctl daemon-reload',
      'systemctl disable --now haproxy.service',
      'systemctl enable edgeroute-haproxy.service edgeroute-agent.service',
      'systemctl start edgeroute-haproxy.service',
      'systemctl start edgeroute-agent.service',
    ]);
  });

  it('writes units that systemd-analyze verify accepts', async (ctx) => {
    ctx.skip(!existsSync(SYSTEMD_ANALYZE), `${SYSTEMD_ANALYZE} is not installed on this machine (Debian package systemd); the units were not verified`);
    const verify = await execa(SYSTEMD_ANALYZE, ['verify', './edgeroute-haproxy.service', './edgeroute-agent.service'], { cwd: at('/etc/systemd/system'), reject: false });
    expect(verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
  });

  it('writes a haproxy.cfg that haproxy -c passes (moved under the scratch root)', async (ctx) => {
    ctx.skip(!existsSync('/usr/sbin/haproxy'), 'haproxy is not installed');
    // A copy of the folder with the node's paths pointing into the copy (every file: the config may name others).
    // The socket's group is the node's edgeroute group, which this machine may not have.
    const copy = join(work, 'relocated-haproxy');
    cpSync(at(DIR), copy, { recursive: true });
    for (const file of listTree(copy).keys()) {
      if (statSync(file).isFile()) writeFileSync(file, readFileSync(file, 'utf8').replaceAll(DIR, copy).replace(' group edgeroute', ''));
    }
    const cfg = join(copy, 'haproxy.cfg');
    const check = await execa('/usr/sbin/haproxy', ['-c', '-f', cfg], { reject: false, all: true });
    expect(check.all).toContain('Configuration file is valid');
  });

  it('changes nothing when run again, and keeps the maps HAProxy owns once it runs', async () => {
    writeFileSync(at(`${DIR}/hosts.map`), 'web.example pool-1\n');
    const before = listTree(root);
    const again = await edgeroute(['install', '--data-plane', 'haproxy', '--config', config, '--root', root]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('nothing to change');
    expect(listTree(root)).toEqual(before);
    expect(readFileSync(at(`${DIR}/hosts.map`), 'utf8')).toBe('web.example pool-1\n');
  });

  it('applies a changed config: rewrites haproxy.cfg, keeps the API token', async () => {
    const env = readFileSync(at('/etc/edgeroute/agent.env'), 'utf8');
    const run = await edgeroute(['install', '--data-plane', 'haproxy', '--config', writeHaproxyConfig(tempDir(), '8088'), '--root', root]);
    expect(run.exitCode).toBe(0);
    const written = [...printedFiles(run.stdout, root)].filter(([, file]) => file.verb !== 'keep').map(([path]) => path);
    // The config file and HAProxy's folder: not the agent's secrets or the units.
    expect(written, run.stdout).toContain(`${DIR}/haproxy.cfg`);
    expect(written.filter((path) => !path.startsWith(`${DIR}/`)), run.stdout).toEqual(['/etc/edgeroute/edgeroute.json']);
    expect(readFileSync(at('/etc/edgeroute/agent.env'), 'utf8')).toBe(env);
    expect(readFileSync(at(`${DIR}/haproxy.cfg`), 'utf8')).toMatch(/bind :8088$/m);
  });

  it.each([
    [{ 'nginx-conf': {}, agent: { marathon: 'http://m:8080' } }, 'not "nginx-conf"'],
    [{ agent: { marathon: 'http://m:8080', 'nginx-admin': 'http://127.0.0.1:8081' } }, '"agent.nginx-admin" is for nginx nodes'],
    [{ 'haproxy-conf': { 'admin-socket-group': 'wheel' }, agent: { marathon: 'http://m:8080' } }, 'must be edgeroute'],
    [{ agent: { marathon: 'http://m:8080', 'haproxy-socket': '/tmp/other.sock' } }, 'must be the same'],
  ])('refuses %j with exit code 2 and writes nothing', async (node, message) => {
    const dir = tempDir();
    const file = join(dir, 'node.json');
    writeFileSync(file, JSON.stringify(node));
    const run = await edgeroute(['install', '--data-plane', 'haproxy', '--config', file, '--root', join(dir, 'root')]);
    expect(run.stderr).toContain(message);
    expect(run.exitCode).toBe(2);
    expect(existsSync(join(dir, 'root'))).toBe(false);
  });

  it("takes agent.certs and makes its folder readable by the agent's group", async () => {
    const dir = tempDir();
    const file = join(dir, 'node.json');
    writeFileSync(file, JSON.stringify({ 'haproxy-conf': { listen: ['80'] }, agent: { marathon: 'http://m:8080', certs: '/etc/edgeroute/certs' } }));
    const run = await edgeroute(['install', '--data-plane', 'haproxy', '--config', file, '--root', join(dir, 'root')]);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(printedFiles(run.stdout, join(dir, 'root')).get('/etc/edgeroute/certs')).toMatchObject({ mode: '0750', owner: 'root:edgeroute' });
    expect(mode(join(dir, 'root', '/etc/edgeroute/certs'))).toBe('0750');
  });

  it('refuses an unknown data plane', async () => {
    const run = await edgeroute(['install', '--data-plane', 'envoy', '--config', config, '--root', tempDir(), '--dry-run']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('--data-plane must be nginx or haproxy');
  });
});
