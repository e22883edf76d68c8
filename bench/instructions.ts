/**
 * The request path's cost counted in user-space instructions, which a
 * loaded machine does not move (worker CPU time moved by ±3 µs between
 * rounds of the same router on this shared machine, more than the changes
 * being measured). Each variant is edgeroute's nginx.conf run as one
 * process (`master_process off`) under valgrind's callgrind, with the
 * counting switched on only around N requests sent one after another on
 * one kept-alive connection, after a warm-up that lets LuaJIT compile the
 * path. What the process does meanwhile besides those requests (its
 * timers, the policy refresh) grows with the time the count takes; it is
 * a few hundred instructions a request here and is reported, not
 * subtracted.
 *
 * Variants: a_t (the template as a plain proxy: no Lua in any request
 * phase, the backend as the upstream's server), a_t_balancer (a_t with a
 * Lua balancer that only sets that peer), floor_t (the template with the
 * plugin's calls made no-ops),
 * b (a one-version app), p (by path prefix, with settings), c (the
 * ten-rule policy), c_many (INSTR_MANY two-version apps under the policy,
 * served in turn: a worker past 32 policies walks them), b_wide (b's app
 * with 100 tasks of equal weight), lc_wide (the same by least
 * connections); with INSTR_BASE_LUA (a `lua` folder,
 * e.g. `git archive BASE lua`) also b, b_wide, p and c on that plugin,
 * alternated with the current one. INSTR_ONLY=b,c counts only those (and
 * floor_t); INSTR_KEEP=dir keeps callgrind's dumps there as
 * `<variant>.<round>.callgrind.out.*`, for `callgrind_annotate` (which C
 * functions a variant adds over another).
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { renderNginxConf } from '../agent/dataplane/nginx/conf/render.js';
import { freePort } from '../agent/sandbox/free-port.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { sendInTurn } from './lib/in-turn.js';
import { pushTable, type BenchApp } from './lib/push.js';
import { P_PATH, P_SETTINGS, SHARED_HOST, TEN_RULE_POLICY } from './dataplane.js';
import { fromLuaDir, templateFloor, templatePlain } from './dataplane-parts.js';

const WIDE_TASKS = 100;

const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', cookie: 'uid=bench-user-1; session=abc' };

interface Variant {
  readonly key: string;
  readonly hosts: readonly string[];
  readonly editConf?: (conf: string) => string;
}

function manyHosts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `g${i}.bench`);
}

function apps(ports: readonly number[], many: number): BenchApp[] {
  return [
    { id: 'one', vhosts: ['one.bench'], versions: { stable: ports } },
    // A large app: 100 tasks (over the same backend ports), equal weights; and the same balanced by least connections.
    { id: 'wide', vhosts: ['wide.bench'], versions: { stable: Array.from({ length: WIDE_TASKS }, (_, i) => ports[i % ports.length] as number) } },
    { id: 'lc-wide', vhosts: ['lc-wide.bench'], settings: { balance: 'leastconn' }, versions: { stable: Array.from({ length: WIDE_TASKS }, (_, i) => ports[i % ports.length] as number) } },
    { id: 'two', vhosts: ['two.bench'], versions: { stable: ports, grey: ports } },
    { id: 'shared-web', vhosts: [SHARED_HOST], versions: { stable: ports } },
    { id: 'shared-api', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/api'] }, settings: P_SETTINGS, versions: { stable: ports } },
    { id: 'shared-auth', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/auth'] }, settings: { readTimeout: 10, allowFrom: ['127.0.0.0/8'] }, versions: { stable: ports } },
    ...manyHosts(many).map((host, i) => ({ id: `g${i}`, vhosts: [host], versions: { stable: ports, grey: ports } })),
  ];
}

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The instructions callgrind counted in `dir`'s dumps (the `totals:` line of each). */
function countedInstructions(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir).filter((n) => n.startsWith('callgrind.out'))) {
    const found = /^totals: (\d+)/m.exec(readFileSync(join(dir, name), 'utf8'));
    if (found) total += Number(found[1]);
  }
  return total;
}

/** INSTR_KEEP: callgrind's dumps copied there as `<variant>.<round>.<name>`, for `callgrind_annotate` (which C functions a variant adds). */
function keepDumps(from: string, as: string): void {
  const dir = process.env.INSTR_KEEP;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(from).filter((n) => n.startsWith('callgrind.out'))) copyFileSync(join(from, name), join(dir, `${as}.${name}`));
}

/** One count: nginx under callgrind with `variant`'s conf, warmed, then `requests` requests counted. */
async function count(variant: Variant, opts: { redisUrl: string; ports: readonly number[]; many: number; warm: number; requests: number; keepAs?: string }): Promise<{ perRequest: number; ms: number }> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgeroute-bench-instructions-'));
  chmodSync(prefix, 0o755);
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const rendered = renderNginxConf({
    outDir: prefix,
    listen: [`127.0.0.1:${publicPort}`],
    adminListen: [`127.0.0.1:${adminPort}`],
    workerProcesses: 1,
    errorLogLevel: 'warn',
    redis: opts.redisUrl,
    // Policies are read at start and on PUBLISH; a slow refresh keeps the timers' share small.
    policyRefreshSeconds: 30,
  });
  const edited = variant.editConf ? variant.editConf(readFileSync(rendered.confPath, 'utf8')) : readFileSync(rendered.confPath, 'utf8');
  writeFileSync(rendered.confPath, `master_process off;\ndaemon off;\n${edited.replace(/^daemon [^;]*;\n/m, '')}`);
  const nginx = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${prefix}/callgrind.out.%p`, '/usr/sbin/nginx', '-p', prefix, '-c', rendered.confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise((resolve) => nginx.on('exit', resolve));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const pid = String(nginx.pid);
  try {
    // valgrind starts nginx slowly; an nginx that exits meanwhile fails the count at once.
    let starting = true;
    const up = waitFor('nginx under valgrind to answer', () => fetch(`${adminUrl}/edgeroute/status`).then(() => true, () => undefined), 120_000);
    const failed = exited.then(() => {
      if (starting) throw new Error(`instructions: nginx under valgrind exited: ${stderr}`);
    });
    up.catch(() => undefined);
    failed.catch(() => undefined);
    await Promise.race([up, failed]);
    starting = false;
    await pushTable(adminUrl, rendered.adminToken, apps(opts.ports, opts.many));
    const client = new Redis(opts.redisUrl);
    try {
      await waitFor('the policies to load', async () => {
        await client.publish('edgeroute:policy-changed', 'two');
        const status = await fetch(`${adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${rendered.adminToken}` } });
        const body = (await status.json()) as { policies?: Record<string, { loaded: boolean }> };
        return body.policies?.two?.loaded && (opts.many === 0 || body.policies?.[`g${opts.many - 1}`]?.loaded) ? true : undefined;
      }, 120_000);
    } finally {
      client.disconnect();
    }
    const publicUrl = `http://127.0.0.1:${publicPort}`;
    await sendInTurn(publicUrl, opts.warm * variant.hosts.length, variant.hosts, P_PATH, HEADERS);
    execFileSync('callgrind_control', ['--instr=on', pid], { stdio: 'ignore' });
    const started = performance.now();
    await sendInTurn(publicUrl, opts.requests, variant.hosts, P_PATH, HEADERS);
    const ms = performance.now() - started;
    execFileSync('callgrind_control', ['--instr=off', pid], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' });
    await waitFor('the callgrind dump', async () => (countedInstructions(prefix) > 0 ? true : undefined), 30_000);
    if (opts.keepAs) keepDumps(prefix, opts.keepAs);
    return { perRequest: countedInstructions(prefix) / opts.requests, ms };
  } finally {
    nginx.kill('SIGTERM');
    await exited;
    rmSync(prefix, { recursive: true, force: true });
  }
}

export const instructions: Benchmark = {
  name: 'instructions',
  description: 'user-space instructions per request of edgeroute\'s nginx (one process under callgrind): floor_t, b, p, c, c with many policies, 100-task apps by round robin and by leastconn; optionally the same on another plugin tree',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    if (!hasValgrind()) throw new Error('instructions: valgrind is not installed (apt-get install valgrind; scripts/system-deps.sh installs it)');
    const rounds = ctx.smoke ? 1 : Number(process.env.INSTR_ROUNDS ?? 2);
    const requests = ctx.smoke ? 20 : Number(process.env.INSTR_REQUESTS ?? 2000);
    const many = ctx.smoke ? 3 : Number(process.env.INSTR_MANY ?? 100);
    const backends = await startStaticBackends(2);
    const redis = await startRedis();
    const client = new Redis(redis.url);
    try {
      await client.set('edgeroute:policy:two', JSON.stringify(TEN_RULE_POLICY));
      for (let i = 0; i < many; i++) await client.set(`edgeroute:policy:g${i}`, JSON.stringify(TEN_RULE_POLICY));
      const base = process.env.INSTR_BASE_LUA;
      const every: Variant[] = [
        { key: 'a_t', hosts: ['one.bench'], editConf: templatePlain(backends.ports[0] as number) },
        { key: 'a_t_balancer', hosts: ['one.bench'], editConf: templatePlain(backends.ports[0] as number, { balancerLua: true }) },
        { key: 'floor_t', hosts: ['one.bench'], editConf: templateFloor(backends.ports[0] as number) },
        { key: 'b', hosts: ['one.bench'] },
        { key: 'b_wide', hosts: ['wide.bench'] },
        { key: 'lc_wide', hosts: ['lc-wide.bench'] },
        { key: 'p', hosts: [SHARED_HOST] },
        { key: 'c', hosts: ['two.bench'] },
        { key: 'c_many', hosts: manyHosts(many) },
        ...(base
          ? [
              { key: 'b_base', hosts: ['one.bench'], editConf: fromLuaDir(base) },
              { key: 'b_wide_base', hosts: ['wide.bench'], editConf: fromLuaDir(base) },
              { key: 'p_base', hosts: [SHARED_HOST], editConf: fromLuaDir(base) },
              { key: 'c_base', hosts: ['two.bench'], editConf: fromLuaDir(base) },
            ]
          : []),
      ];
      // INSTR_ONLY=b,c: those variants only, and their runs on INSTR_BASE_LUA (floor_t and a_t always, the ratios' denominators).
      const only = process.env.INSTR_ONLY?.split(',');
      const variants = only ? every.filter((v) => v.key === 'floor_t' || v.key === 'a_t' || only.includes(v.key.replace(/_base$/, ''))) : every;
      const counts: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
      const durations: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
      for (let round_ = 0; round_ < rounds; round_++) {
        // Reversed every other round, so that no variant always runs first.
        const order = round_ % 2 === 0 ? variants : [...variants].reverse();
        for (const variant of order) {
          // A warm-up of 200 requests a host for c_many: each of its apps' paths must get hot.
          const warm = ctx.smoke ? 10 : variant.key === 'c_many' ? 200 : 1500;
          // Only c_many's nginx has the many apps: past 32 policies a worker walks them all, c's too.
          const counted = await count(variant, { redisUrl: redis.url, ports: backends.ports, many: variant.key === 'c_many' ? many : 0, warm, requests, keepAs: `${variant.key}.${round_ + 1}` });
          counts[variant.key]?.push(counted.perRequest);
          durations[variant.key]?.push(counted.ms);
          ctx.progress(`round ${round_ + 1}/${rounds} ${variant.key}: ${Math.round(counted.perRequest)} instructions a request (${Math.round(counted.ms)} ms counted)`);
        }
      }
      const per = (key: string) => round(median(counts[key] ?? []), 0);
      const over = (key: string, to: string) => per(key) - per(to);
      const results = {
        // INSTR_ONLY: the regression check compares only the ratios this run could compute.
        partial: only !== undefined,
        setup: { rounds, requests, warmRequests: ctx.smoke ? 10 : 1500, manyApps: many, base: base ?? null, tool: 'valgrind --tool=callgrind, master_process off, one kept-alive connection' },
        instructionsPerRequest: Object.fromEntries(variants.map((v) => [v.key, per(v.key)])),
        rounds: counts,
        countedMs: durations,
        floor_t_over_a_t: over('floor_t', 'a_t'),
        balancer_over_a_t: over('a_t_balancer', 'a_t'),
        b_over_floor_t: over('b', 'floor_t'),
        p_over_b: over('p', 'b'),
        c_over_b: over('c', 'b'),
        c_many_over_c: over('c_many', 'c'),
        b_wide_over_b: over('b_wide', 'b'),
        lc_wide_over_b: over('lc_wide', 'b'),
        ratio_b_floor_t: round(per('b') / per('floor_t')),
        // Higher is better, as the regression baseline compares: the template's own cost over each variant's.
        ratio_floor_t_b: round(per('floor_t') / per('b')),
        ratio_floor_t_p: round(per('floor_t') / per('p')),
        ratio_floor_t_c: round(per('floor_t') / per('c')),
        ratio_floor_t_lc_wide: round(per('floor_t') / per('lc_wide')),
        // Issue 17's c/a and the floor's own share of it, in instructions: the plain proxy's cost over theirs.
        ratio_a_t_c: round(per('a_t') / per('c')),
        ratio_a_t_floor_t: round(per('a_t') / per('floor_t')),
        ...(base ? { c_over_c_base: over('c', 'c_base'), p_over_p_base: over('p', 'p_base'), b_over_b_base: over('b', 'b_base') } : {}),
      };
      const i = results.instructionsPerRequest;
      return {
        summary: `instructions per request (median of ${rounds}): plain a_t ${i.a_t}, with a Lua balancer ${i.a_t_balancer}, floor_t ${i.floor_t} (a_t +${results.floor_t_over_a_t}), b ${i.b} (+${results.b_over_floor_t}), p ${i.p} (b +${results.p_over_b}), c ${i.c} (b +${results.c_over_b}), c with ${many} policies in turn ${i.c_many}, b with ${WIDE_TASKS} tasks ${i.b_wide} (b +${results.b_wide_over_b}), leastconn with ${WIDE_TASKS} tasks ${i.lc_wide} (b +${results.lc_wide_over_b})${base ? `; on ${base}: b ${i.b_base}, b with ${WIDE_TASKS} tasks ${i.b_wide_base}, p ${i.p_base}, c ${i.c_base}` : ''}`,
        targets: [],
        results,
      };
    } finally {
      client.disconnect();
      await redis.stop();
      await backends.stop();
    }
  },
};
