/**
 * Where the request path's CPU goes: the nginx worker's CPU time per request
 * of edgeroute with one part of the request path switched off at a time,
 * beside the whole plugin and the floors under it. Each variant is its own
 * nginx (one worker) with the same apps and backends; a part is switched
 * off by rewriting the rendered nginx.conf (a phase or header removed) or by
 * replacing a module function before the plugin loads (a Lua prelude in
 * init_by_lua), so the shipped plugin has no switches. All variants run in
 * every round, in an order rotated round by round; costs are medians of
 * per-round differences to the whole plugin measured in the same round.
 */
import { Redis } from 'ioredis';
import { startNginxNode, type NginxNode } from '../agent/sandbox/sandbox.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startLuaFloor, startPlainProxy, startStaticBackends } from './lib/nginx-fixtures.js';
import type { NginxProcess } from '../agent/sandbox/nginx-process.js';
import { cpuTimesMs } from './lib/proc.js';
import { pushTable, type BenchApp } from './lib/push.js';
import { runWrk } from './lib/wrk.js';
import { P_PATH, P_SETTINGS, SHARED_HOST, TEN_RULE_POLICY } from './dataplane.js';
import { LUA_DIR } from '../agent/project-paths.js';

const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', cookie: 'uid=bench-user-1; session=abc' };

const MAIN_LOCATION = '\n        location / {\n';

/**
 * Replaces `from` in `text`: its one occurrence, or, when other locations
 * repeat it (the plugin's log phase, the proxy headers), its one
 * occurrence in the public server's `location /`, where requests are
 * routed. Anything else fails the benchmark loudly: a template change must
 * not make it measure the wrong thing.
 */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at >= 0 && text.indexOf(from, at + 1) < 0) return text.slice(0, at) + to + text.slice(at + from.length);
  const open = text.indexOf(MAIN_LOCATION);
  const close = open < 0 ? -1 : text.indexOf('\n        }\n', open + MAIN_LOCATION.length);
  if (at >= 0 && close >= 0) {
    const block = text.slice(open, close);
    const inside = block.indexOf(from);
    if (inside >= 0 && block.indexOf(from, inside + 1) < 0) return text.slice(0, open) + block.slice(0, inside) + to + block.slice(inside + from.length) + text.slice(close);
  }
  throw new Error(`dataplane-parts: expected one ${JSON.stringify(from)} in nginx.conf (or in its location /)`);
}

/** Lua run in init_by_lua before the plugin loads (the plugin keeps module functions in locals when it loads). */
function prelude(lua: string): (conf: string) => string {
  return (conf) => replaceOnce(conf, 'init_by_lua_block {\n', `init_by_lua_block {\n        do ${lua} end\n`);
}

const LOG_PHASE = 'log_by_lua_block {\n                package.loaded["edgeroute.plugin"].log()\n            }\n';
const VERSION_HEADER = 'proxy_set_header X-Edgeroute-Version $edgeroute_version;\n';
const PHASE_CALLS = ['package.loaded["edgeroute.plugin"].access()', 'package.loaded["edgeroute.plugin"].balance()', 'package.loaded["edgeroute.plugin"].log()'];

/**
 * edgeroute's own nginx.conf as a plain proxy: no Lua in any request phase
 * and the task as the upstream's one server (`balancerLua`: keep a Lua
 * balancer that only sets that peer). What the template costs before
 * lua-nginx-module's phase handlers do.
 */
export function templatePlain(port: number, opts: { balancerLua?: boolean } = {}): (conf: string) => string {
  return (conf) => {
    let out = replaceOnce(conf, 'access_by_lua_block {\n                package.loaded["edgeroute.plugin"].access()\n            }\n', '');
    out = replaceOnce(out, LOG_PHASE, '');
    if (opts.balancerLua) return replaceOnce(out, 'package.loaded["edgeroute.plugin"].balance()', `package.loaded["ngx.balancer"].set_current_peer("127.0.0.1", ${port})`);
    out = replaceOnce(out, 'server 0.0.0.1;', `server 127.0.0.1:${port};`);
    return replaceOnce(out, 'balancer_by_lua_block {\n            package.loaded["edgeroute.plugin"].balance()\n        }\n', '');
  };
}

/** edgeroute's own nginx.conf with each plugin call made a no-op (the balancer sets a fixed peer): the template's cost without the plugin's. */
export function templateFloor(port: number, lua: { access?: string; balancer?: string; log?: string } = {}): (conf: string) => string {
  return (conf) => {
    let out = replaceOnce(conf, 'package.loaded["edgeroute.plugin"].access()', lua.access ?? '');
    out = replaceOnce(out, 'package.loaded["edgeroute.plugin"].balance()', `package.loaded["ngx.balancer"].set_current_peer("127.0.0.1", ${port}) ${lua.balancer ?? ''}`);
    return replaceOnce(out, 'package.loaded["edgeroute.plugin"].log()', lua.log ?? '');
  };
}

interface Variant {
  readonly key: string;
  readonly label: string;
  readonly router: 'plain' | 'floor' | 'edge';
  readonly host: string;
  readonly editConf?: (conf: string) => string;
}

/** The same nginx.conf loading the plugin from another tree (PARTS_BASE_LUA: a `lua` folder, e.g. `git archive BASE lua`): the code before a change, measured in the same rounds as the code after it. */
export function fromLuaDir(dir: string): (conf: string) => string {
  return (conf) => replaceOnce(conf, `lua_package_path "${LUA_DIR}/?.lua;;";`, `lua_package_path "${dir}/?.lua;;";`);
}

/** Calls repeated in each request of a call variant: the cost of one call is the variant's extra over floor_t divided by this (a hot loop: caches warm, so a lower bound of the call in place). */
export const CALL_REPEATS = 10;

/** The C calls the request path makes, one variant each (PARTS_CALLS=1): floor_t with the call made CALL_REPEATS times in its phase. */
function callVariants(firstPort: number): Variant[] {
  if (process.env.PARTS_CALLS !== '1') return [];
  const calls: Array<{ key: string; label: string; phase: 'access' | 'balancer' | 'log'; lua: string }> = [
    { key: 'host', label: 'ngx.var.host (a named variable)', phase: 'access', lua: 'local _ = ngx.var.host' },
    { key: 'http_host', label: 'ngx.var.http_host (a named header)', phase: 'access', lua: 'local _ = ngx.var.http_host' },
    { key: 'uri', label: 'ngx.var.uri', phase: 'access', lua: 'local _ = ngx.var.uri' },
    { key: 'remote_addr', label: 'ngx.var.binary_remote_addr', phase: 'access', lua: 'local _ = ngx.var.binary_remote_addr' },
    { key: 'unknown_header', label: 'ngx.var.http_x_canary (a header nginx does not name: a prefix variable, absent)', phase: 'access', lua: 'local _ = ngx.var.http_x_canary' },
    { key: 'cookie_var', label: 'ngx.var.cookie_uid (a prefix variable, present)', phase: 'access', lua: 'local _ = ngx.var.cookie_uid' },
    { key: 'http_cookie', label: 'ngx.var.http_cookie', phase: 'access', lua: 'local _ = ngx.var.http_cookie' },
    { key: 'arg', label: 'ngx.var.arg_ab (absent)', phase: 'access', lua: 'local _ = ngx.var.arg_ab' },
    { key: 'var_set', label: 'ngx.var.edgeroute_version = "stable"', phase: 'access', lua: 'ngx.var.edgeroute_version = "stable"' },
    { key: 'set_uri', label: 'ngx.req.set_uri(uri, false, true)', phase: 'access', lua: 'ngx.req.set_uri("/api/v1/items", false, true)' },
    { key: 'upgrade_header', label: 'ngx.var.http_upgrade in the balancer', phase: 'balancer', lua: 'local _ = ngx.var.http_upgrade' },
    { key: 'upgrade_map', label: 'ngx.var.edgeroute_connection (the map, computed already) in the balancer', phase: 'balancer', lua: 'local _ = ngx.var.edgeroute_connection' },
    { key: 'set_timeouts', label: 'ngx.balancer.set_timeouts(5, 30, 30) (the first call copies the upstream configuration)', phase: 'balancer', lua: 'package.loaded["ngx.balancer"].set_timeouts(5, 30, 30)' },
    { key: 'log_reads', label: 'ngx.status, ngx.now() and ngx.req.start_time() in the log phase', phase: 'log', lua: 'local _ = ngx.status + ngx.now() - ngx.req.start_time()' },
  ];
  return calls.map((call) => ({
    key: `call_${call.key}`,
    label: `floor_t + ${CALL_REPEATS}× ${call.label}`,
    router: 'edge' as const,
    host: 'one.bench',
    editConf: templateFloor(firstPort, { [call.phase]: `for _ = 1, ${CALL_REPEATS} do ${call.lua} end` }),
  }));
}

/** b, p and c on the plugin in PARTS_BASE_LUA, when it is set. */
function baseVariants(): Variant[] {
  const dir = process.env.PARTS_BASE_LUA;
  if (!dir) return [];
  return [
    { key: 'b_base', label: `b on the plugin in ${dir}`, router: 'edge', host: 'one.bench', editConf: fromLuaDir(dir) },
    { key: 'p_base', label: `p on the plugin in ${dir}`, router: 'edge', host: SHARED_HOST, editConf: fromLuaDir(dir) },
    { key: 'c_base', label: `c on the plugin in ${dir}`, router: 'edge', host: 'two.bench', editConf: fromLuaDir(dir) },
  ];
}

function variants(firstPort: number): Variant[] {
  const compose =
    (...edits: Array<(conf: string) => string>) =>
    (conf: string) =>
      edits.reduce((text, edit) => edit(text), conf);
  return [
    { key: 'a', label: 'plain proxy_pass', router: 'plain', host: 'one.bench' },
    { key: 'floor', label: 'floor: plain proxy + no-op access, balancer and log Lua', router: 'floor', host: 'one.bench' },
    { key: 'floor_t', label: "floor in edgeroute's nginx.conf (its map, set and proxy headers; plugin calls made no-ops)", router: 'edge', host: 'one.bench', editConf: templateFloor(firstPort) },
    {
      key: 'floor_t_ctx',
      label: 'floor_t + ngx.ctx: two fields written in access, read in balancer and log',
      router: 'edge',
      host: 'one.bench',
      editConf: templateFloor(firstPort, { access: 'local c = ngx.ctx; c.v = 1; c.s = 2', balancer: 'local v = ngx.ctx.v', log: 'local v = ngx.ctx.v' }),
    },
    {
      key: 'floor_t_vars',
      label: 'floor_t + $host read and $edgeroute_version set in access, $http_upgrade read in balancer',
      router: 'edge',
      host: 'one.bench',
      editConf: templateFloor(firstPort, { access: 'local h = ngx.var.host; ngx.var.edgeroute_version = "stable"', balancer: 'local u = ngx.var.http_upgrade' }),
    },
    {
      key: 'floor_t_policy_vars',
      label: "floor_t + the eight variables the ten-rule policy reads (c's cookies, headers, argument, address)",
      router: 'edge',
      host: 'one.bench',
      editConf: templateFloor(firstPort, {
        access: 'local v = ngx.var; local _ = v.cookie_grey, v.binary_remote_addr, v.http_x_device_model, v.http_user_agent, v.arg_ab, v.http_x_canary, v.cookie_beta, v.cookie_uid',
      }),
    },
    {
      key: 'floor_t_cookie_once',
      label: "floor_t + $http_cookie read once and searched for the policy's three cookie names in Lua",
      router: 'edge',
      host: 'one.bench',
      editConf: templateFloor(firstPort, {
        access: 'local c = ngx.var.http_cookie or ""; local f = string.find; local _ = f(c, "grey=", 1, true), f(c, "beta=", 1, true), f(c, "uid=", 1, true)',
      }),
    },
    { key: 'b', label: 'edgeroute, one-version app (b)', router: 'edge', host: 'one.bench' },
    { key: 'no_log', label: 'b without the log phase (metrics, in-flight leave)', router: 'edge', host: 'one.bench', editConf: (c) => replaceOnce(c, LOG_PHASE, '') },
    { key: 'no_metrics', label: 'b without request metrics', router: 'edge', host: 'one.bench', editConf: prelude('require("edgeroute.metrics").log = function() end') },
    {
      key: 'no_inflight',
      label: 'b without in-flight counting',
      router: 'edge',
      host: 'one.bench',
      editConf: prelude('local m = require("edgeroute.inflight"); m.enter = function() end; m.leave = function() end'),
    },
    {
      key: 'no_lookup',
      label: 'b without the host lookup (the first answer reused; $host still read)',
      router: 'edge',
      host: 'one.bench',
      editConf: prelude(
        'local r = require("edgeroute.router"); local find = r.find_route; local app, prefix; r.find_route = function(h, u) if app == nil then app, prefix = find(h, u) end return app, prefix end',
      ),
    },
    {
      key: 'no_pick',
      label: 'b without the weighted round-robin pick (always the first peer)',
      router: 'edge',
      host: 'one.bench',
      editConf: prelude('require("edgeroute.swrr").pick = function(self) return self.peers[1] end'),
    },
    {
      key: 'no_version_header',
      label: 'b without the X-Edgeroute-Version header to the backend',
      router: 'edge',
      host: 'one.bench',
      editConf: (c) => replaceOnce(c, VERSION_HEADER, ''),
    },
    {
      key: 'require_calls',
      label: 'b with the phases calling require("edgeroute.plugin") instead of package.loaded (as before)',
      router: 'edge',
      host: 'one.bench',
      editConf: (c) => PHASE_CALLS.reduce((text, call) => replaceOnce(text, call, call.replace('package.loaded["edgeroute.plugin"]', 'require("edgeroute.plugin")')), c),
    },
    {
      key: 'no_log_no_header',
      label: 'b without the log phase and the version header',
      router: 'edge',
      host: 'one.bench',
      editConf: compose(
        (c) => replaceOnce(c, LOG_PHASE, ''),
        (c) => replaceOnce(c, VERSION_HEADER, ''),
      ),
    },
    { key: 'leastconn', label: 'an app with edgeroute.balance=leastconn', router: 'edge', host: 'lc.bench' },
    { key: 'sticky', label: 'an app with a sticky cookie (the request carries none)', router: 'edge', host: 'sticky.bench' },
    { key: 'p_path', label: 'p without settings: by path prefix only', router: 'edge', host: PATH_ONLY_HOST },
    { key: 'p_timeouts', label: 'p_path + connect, send and read timeouts', router: 'edge', host: PATH_TIMEOUTS_HOST },
    { key: 'p_allow', label: 'p_path + allowFrom (two CIDRs, the second lets the client in)', router: 'edge', host: PATH_ALLOW_HOST },
    { key: 'p', label: 'p: by path prefix, with timeouts and allowFrom', router: 'edge', host: SHARED_HOST },
    { key: 'c', label: 'c: two versions, ten-rule policy', router: 'edge', host: 'two.bench' },
    { key: 'no_choice', label: 'c without the policy (the default version)', router: 'edge', host: 'two.bench', editConf: prelude('require("edgeroute.policy_sync").choose_version = function() return nil end') },
    ...baseVariants(),
    ...callVariants(firstPort),
  ];
}

// p taken apart: the same three-app layout as p's host on hosts of their own, each /api app with one of p's settings.
const PATH_ONLY_HOST = 'path.bench';
const PATH_TIMEOUTS_HOST = 'timeouts.bench';
const PATH_ALLOW_HOST = 'allow.bench';

function pathLayout(host: string, ports: readonly number[], settings?: BenchApp['settings']): BenchApp[] {
  return [
    { id: `${host}-web`, vhosts: [host], versions: { stable: ports } },
    { id: `${host}-api`, vhosts: [host], paths: { [host]: ['/api'] }, ...(settings ? { settings } : {}), versions: { stable: ports } },
    { id: `${host}-auth`, vhosts: [host], paths: { [host]: ['/auth'] }, settings: { readTimeout: 10, allowFrom: ['127.0.0.0/8'] }, versions: { stable: ports } },
  ];
}

function apps(ports: readonly number[]): BenchApp[] {
  return [
    ...pathLayout(PATH_ONLY_HOST, ports),
    ...pathLayout(PATH_TIMEOUTS_HOST, ports, { connectTimeout: P_SETTINGS.connectTimeout, readTimeout: P_SETTINGS.readTimeout, sendTimeout: P_SETTINGS.sendTimeout }),
    ...pathLayout(PATH_ALLOW_HOST, ports, { allowFrom: P_SETTINGS.allowFrom }),
    { id: 'one', vhosts: ['one.bench'], versions: { stable: ports } },
    { id: 'two', vhosts: ['two.bench'], versions: { stable: ports, grey: ports } },
    { id: 'lc', vhosts: ['lc.bench'], settings: { balance: 'leastconn' }, versions: { stable: ports } },
    { id: 'sticky', vhosts: ['sticky.bench'], settings: { sticky: 'er_sticky' }, versions: { stable: ports } },
    { id: 'shared-web', vhosts: [SHARED_HOST], versions: { stable: ports } },
    { id: 'shared-api', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/api'] }, settings: P_SETTINGS, versions: { stable: ports } },
    { id: 'shared-auth', vhosts: [SHARED_HOST], paths: { [SHARED_HOST]: ['/auth'] }, settings: { readTimeout: 10, allowFrom: ['127.0.0.0/8'] }, versions: { stable: ports } },
  ];
}

export const dataplaneParts: Benchmark = {
  name: 'dataplane-parts',
  description: "the nginx worker's CPU per request with each part of edgeroute's request path switched off in turn",
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const rounds = ctx.smoke ? 1 : Number(process.env.PARTS_ROUNDS ?? 11);
    const seconds = ctx.smoke ? 1 : Number(process.env.PARTS_SECONDS ?? 2);
    const connections = ctx.smoke ? 4 : 50;
    const only = process.env.PARTS_ONLY?.split(',');
    const backends = await startStaticBackends(4);
    const redis = await startRedis();
    const client = new Redis(redis.url);
    const chosen = variants(backends.ports[0] as number).filter((v) => !only || only.includes(v.key) || v.key === 'b');
    const running: Array<{ variant: Variant; url: string; process: NginxProcess; stop(): Promise<void> }> = [];
    try {
      await client.set('edgeroute:policy:two', JSON.stringify(TEN_RULE_POLICY));
      for (const variant of chosen) {
        if (variant.router === 'plain') {
          const plain = await startPlainProxy(backends.ports.map((port) => ({ host: '127.0.0.1', port })));
          running.push({ variant, url: plain.url, process: plain.process, stop: () => plain.stop() });
        } else if (variant.router === 'floor') {
          const floor = await startLuaFloor(backends.ports[0] as number);
          running.push({ variant, url: floor.url, process: floor.process, stop: () => floor.stop() });
        } else {
          const edge: NginxNode = await startNginxNode({ workerProcesses: 1, redis: redis.url, policyRefreshSeconds: 0.2, errorLogLevel: 'warn', editConf: variant.editConf });
          running.push({ variant, url: edge.publicUrl, process: edge.process, stop: () => edge.process.stop() });
          await pushTable(edge.adminUrl, edge.adminToken, apps(backends.ports));
          await waitFor(`${variant.key} routes`, async () => ((await httpGet(`${edge.publicUrl}${P_PATH}`, { host: variant.host })).status === 200 ? true : undefined));
          if (variant.host === 'two.bench') {
            await waitFor(`${variant.key}: the policy to load`, async () => {
              const status = await fetch(`${edge.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${edge.adminToken}` } });
              const body = (await status.json()) as { policies?: Record<string, { loaded: boolean }> };
              return body.policies?.two?.loaded ? true : undefined;
            });
          }
        }
      }
      const target = (r: (typeof running)[number]) => ({ url: `${r.url}${P_PATH}`, headers: { ...HEADERS, host: r.variant.host }, connections });
      // Warm-up (traces compiled, pools filled); a smoke run only proves the variants answer.
      if (!ctx.smoke) for (const r of running) await runWrk({ ...target(r), durationSeconds: 1 });
      const cpu: Record<string, number[]> = Object.fromEntries(running.map((r) => [r.variant.key, []]));
      // User time alone, summed over the rounds (it is counted in 10 ms ticks; the sum evens that out).
      const userMs: Record<string, number> = Object.fromEntries(running.map((r) => [r.variant.key, 0]));
      const requests: Record<string, number> = Object.fromEntries(running.map((r) => [r.variant.key, 0]));
      const rps: Record<string, number[]> = Object.fromEntries(running.map((r) => [r.variant.key, []]));
      for (let round_ = 0; round_ < rounds; round_++) {
        // Rotated (and reversed every other round) so that no variant always follows another.
        const order = running.map((_, i) => running[(i + round_) % running.length]!);
        if (round_ % 2 === 1) order.reverse();
        for (const r of order) {
          const workerCpu = () =>
            r.process.workerPids().reduce(
              (sum, pid) => {
                const t = cpuTimesMs(pid);
                return { user: sum.user + t.userMs, total: sum.total + t.userMs + t.systemMs };
              },
              { user: 0, total: 0 },
            );
          const before = workerCpu();
          const result = await runWrk({ ...target(r), durationSeconds: seconds });
          if (result.failed > 0) throw new Error(`${r.variant.key}: ${result.failed} of ${result.requests} requests failed; the setup is broken`);
          const after = workerCpu();
          cpu[r.variant.key]!.push(((after.total - before.total) * 1000) / result.requests);
          userMs[r.variant.key]! += after.user - before.user;
          requests[r.variant.key]! += result.requests;
          rps[r.variant.key]!.push(result.requestsPerSecond);
        }
        ctx.progress(`round ${round_ + 1}/${rounds}: ${running.map((r) => `${r.variant.key} ${round(cpu[r.variant.key]!.at(-1)!, 2)}`).join(', ')} µs`);
      }
      const b = cpu.b!;
      const userUs = (key: string) => ((userMs[key] ?? NaN) * 1000) / (requests[key] ?? NaN);
      const table = Object.fromEntries(
        running.map((r) => {
          const mine = cpu[r.variant.key]!;
          return [
            r.variant.key,
            {
              label: r.variant.label,
              cpuUsPerRequest: round(median(mine), 2),
              // Negative: this variant costs less than b by that much.
              minusBUs: round(median(mine.map((us, i) => us - (b[i] ?? NaN))), 2),
              ratioToB: round(median(mine.map((us, i) => us / (b[i] ?? NaN)))),
              userUsPerRequest: round(userUs(r.variant.key), 2),
              userMinusBUs: round(userUs(r.variant.key) - userUs('b'), 2),
              requestsPerSecond: round(median(rps[r.variant.key]!), 0),
              rounds: mine.map((us) => round(us, 2)),
            },
          ];
        }),
      );
      return {
        summary: `CPU per request, µs (vs b; user time alone, vs b): ${running
          .map((r) => {
            const v = table[r.variant.key]!;
            const signed = (n: number) => `${n >= 0 ? '+' : ''}${n}`;
            return `${r.variant.key} ${v.cpuUsPerRequest} (${signed(v.minusBUs)}; ${v.userUsPerRequest}, ${signed(v.userMinusBUs)})`;
          })
          .join(', ')}`,
        targets: [],
        results: { setup: { rounds, secondsPerRun: seconds, connections, wrkThreads: 2, workers: 1, path: P_PATH, measure: "the nginx worker's CPU time (user + system, /proc) per request: medians of rounds; user time alone: summed over rounds" }, variants: table },
      };
    } finally {
      client.disconnect();
      for (const r of running) await r.stop();
      await redis.stop();
      await backends.stop();
    }
  },
};
