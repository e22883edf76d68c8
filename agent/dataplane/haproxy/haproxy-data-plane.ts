/**
 * HAProxy (from `edgeroute haproxy-conf`) as the agent's data plane, through
 * its runtime API only, never a reload: each routed app gets one of the
 * pre-declared pool backends, its hosts go to that backend in hosts.map, its
 * tasks are dynamic servers, weighted and drained at run time.
 *
 * What HAProxy holds is the truth: the adapter keeps a model of it (map
 * entries, servers), read back from HAProxy on every whole-table apply (so an
 * agent or an HAProxy restart needs nothing on disk), and each apply edits
 * only what differs. Routing is by host, to the app's default version.
 *
 * TCP (edgeroute.tcpPort) works the same way on a second pool: an app with a
 * TCP port gets one of the `mode tcp` pool backends, its port goes to that
 * backend in tcp-ports.map (read by the TCP frontend that binds the whole
 * --tcp-ports range), and its tasks are servers there too. An app bound to
 * one address (edgeroute.tcpBind) is keyed "ADDRESS/PORT" there, which the
 * frontend looks up first; its address needs a listener of its own, which a
 * reload adds, unless a listen host already receives it.
 */
import type { Logger } from 'pino';
import type { AppRoute, RoutingTable } from '../../core/routing-table.js';
import type { ApplyResult, DataPlane, DataPlaneStatus, InflightReport, TableChange } from '../data-plane.js';
import { HOSTS_MAP_FILE, LEGACY_POOL_PURGE_DELAY_MS, POOL_PURGE_DELAY_VAR, TCP_BINDS_VAR, TCP_EXTRA_PORTS_VAR, TCP_HOSTS_VAR, TCP_PORTS_FROM_VAR, TCP_PORTS_MAP_FILE, TCP_PORTS_TO_VAR } from './render.js';
import { LocalAddresses } from './local-addresses.js';
import { bindKey, parseStrVar, receives, wildcardOn, type TcpListeners } from './tcp-binds.js';
import { describeTcpBind } from '../../core/tcp-bind.js';
import { HaproxyRuntime } from './runtime-client.js';
import { ServerModels, type ServerModel } from './server-models.js';
import { HaproxyReloader } from './reload.js';
import { WorkerWatch } from './worker-watch.js';
import type { BackendOwner } from './stats-metrics.js';
import { PortClashes } from './port-clashes.js';
import { LUA_TARGET } from './lua-records.js';
import { LuaRouting, type PolicySource } from './lua-routing.js';
import { IndexedMap } from './indexed-map.js';
import { ACME_CHALLENGES_MAP_FILE, replaceAcmeChallengeMap } from './acme-challenge-map.js';
import {
  appHosts,
  diffHostMap,
  findMapFile,
  parseGetVar,
  parseInfoGeneration,
  parseShowMap,
  parseShowStat,
  poolKind,
  stickyServerId,
  scaleWeights,
  serverName,
  tcpPortKey,
  unsupportedFeatures,
  wantedPoolKind,
  type StatServer,
} from './runtime-plan.js';

export interface HaproxyDataPlaneOptions {
  /** The admin stats socket (haproxy-conf's --admin-socket). */
  readonly socket: string;
  /** How often draining servers are checked for their last session. */
  readonly reapIntervalMs?: number;
  /**
   * The folder haproxy-conf wrote (--haproxy-conf-dir): when the pool runs
   * out or a TCP port is outside what HAProxy binds, the agent re-renders
   * haproxy.cfg there and reloads HAProxy (reload.ts). null: it only warns.
   */
  readonly confDir?: string | null;
  /** How long needs for a reload gather before one reload. */
  readonly reloadDebounceMs?: number;
  /** Split policies for the Lua action (policy-feed.ts); null: every app gets its default version. */
  readonly policies?: PolicySource | null;
}

type Kind = 'http' | 'tcp';

/** One of the two ways an app is routed: its pool, its map (key → backend) and which backend each app holds. */
interface Routing {
  readonly kind: Kind;
  mapFile: string | null;
  /** What the map holds: host or port → backend. */
  entries: IndexedMap;
  pool: string[];
  /** App → its pool backend. */
  readonly assigned: Map<string, string>;
}

export class HaproxyDataPlane implements DataPlane {
  readonly name = 'haproxy';
  readonly release = null;
  private readonly runtime: HaproxyRuntime;
  private readonly http: Routing = { kind: 'http', mapFile: null, entries: new IndexedMap(), pool: [], assigned: new Map() };
  private readonly tcp: Routing = { kind: 'tcp', mapFile: null, entries: new IndexedMap(), pool: [], assigned: new Map() };
  /** The ports the TCP frontend binds (haproxy-conf --tcp-ports); null: none. */
  private tcpRange: { from: number; to: number } | null = null;
  /** Ports it binds besides the range (added by reloads). */
  private tcpExtraPorts: ReadonlySet<number> = new Set();
  /** Its listen hosts; null: a config that looks connections up by port only (from before edgeroute.tcpBind). */
  private tcpHosts: readonly string[] | null = null;
  /** The ADDRESS/PORT listeners it has for address-bound apps (added by reloads). */
  private tcpBinds: ReadonlySet<string> = new Set();
  /** The pool-purge-delay servers are added with: the config's (haproxy-conf --upstream-idle-timeout). */
  private poolPurgeDelayMs = LEGACY_POOL_PURGE_DELAY_MS;
  /** Whether the agent said that the config predates --upstream-idle-timeout (once per agent). */
  private saidLegacyPurgeDelay = false;
  /** Whether this node has the addresses apps bind their TCP ports to. */
  private readonly localAddresses = new LocalAddresses();
  /** Grows the pool or binds more TCP ports by a reload; null without --haproxy-conf-dir. */
  private readonly reloader: HaproxyReloader | null;
  /** The worker the runtime connection reaches, followed across reloads. */
  private readonly workers: WorkerWatch;
  /** Paths, per-route settings and versions: the Lua action's maps and the backends of non-default versions. */
  private readonly lua: LuaRouting;
  /** Apps balanced round robin because their balance's pool had no free backend (warned once). */
  private readonly balanceFallbacks = new Set<string>();
  /** What HAProxy holds. */
  private servers = new ServerModels();
  /** The routes last applied, by app. */
  private routes = new Map<string, AppRoute>();
  /** Those with a TCP port: what the port checks need, without a pass over every app. */
  private tcpRoutes = new Map<string, AppRoute>();
  /** Where the last search for a free backend of each pool kind stopped, in this reconcile. */
  private readonly freeFrom = new Map<string, number>();
  /** Apps a pool had no backend for, as `kind app`. */
  private readonly unplaced = new Set<string>();
  /** App → why its TCP port is not routed, once warned. */
  private readonly tcpWarned = new Map<string, string>();
  /** Server name → task id, for every name the agent derived. */
  private readonly taskOfServer = new Map<string, string>();
  private readonly warned = new Map<string, string>();
  /** Other processes listening on the apps' TCP ports. */
  private readonly portClashes: PortClashes;
  private version: string | null = null;
  private generation: string | null = null;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly reaper: NodeJS.Timeout;
  /** The fleet's pending ACME challenges, as last handed over: written again into a reloaded worker's map. */
  private acmeChallenges: ReadonlyMap<string, string> = new Map();
  /** Told when a new worker (after a reload or a restart) holds the routes again. */
  private readonly newWorkerListeners: Array<() => void> = [];

  constructor(
    opts: HaproxyDataPlaneOptions,
    private readonly log: Logger,
  ) {
    this.runtime = new HaproxyRuntime(opts.socket);
    this.portClashes = new PortClashes(log);
    this.workers = new WorkerWatch(this.runtime);
    this.lua = new LuaRouting(opts.policies ?? null);
    opts.policies?.onChange(() => void this.exclusive(() => this.syncLua()).catch((err: Error) => this.log.warn({ err }, 'applying a changed split policy to haproxy failed')));
    this.reloader = opts.confDir
      ? new HaproxyReloader(
          { confDir: opts.confDir, socket: opts.socket, ...(opts.reloadDebounceMs === undefined ? {} : { debounceMs: opts.reloadDebounceMs }) },
          {
            exclusive: (fn) => this.exclusive(fn),
            runtime: this.runtime,
            waiting: () => ({ http: [...this.unplaced].filter((u) => u.startsWith('http ')).length, tcp: [...this.unplaced].filter((u) => u.startsWith('tcp ')).length }),
            reapply: () => this.reapplyAfterReload(),
          },
          log,
        )
      : null;
    this.reaper = setInterval(() => void this.exclusive(() => this.reap()).catch((err: Error) => this.log.debug({ err: err.message }, 'drain check failed')), opts.reapIntervalMs ?? 250);
    this.reaper.unref();
  }

  apply(change: TableChange): Promise<ApplyResult> {
    return this.exclusive(() => this.applyNow(change));
  }

  /**
   * `listener` runs each time a worker other than the last one (a reload or
   * a restart of HAProxy) has been given the routes: what else a new worker
   * starts without, such as the certificates served by SNI, can follow at
   * once rather than at its owner's next check.
   */
  onNewWorker(listener: () => void): void {
    this.newWorkerListeners.push(listener);
  }

  private adopt(generation: string | null): void {
    const previous = this.generation;
    this.generation = generation;
    if (previous === null || generation === previous) return;
    for (const listener of this.newWorkerListeners) listener();
  }

  /** Replaces acme-challenges.map's entries (token → key authorization) in the current worker (acme-challenge-map.ts). */
  replaceAcmeChallenges(challenges: ReadonlyMap<string, string>): Promise<void> {
    return this.exclusive(async () => {
      // The current worker: after a reload, the connection may still be with the old one.
      await this.workers.info();
      this.acmeChallenges = new Map(challenges);
      await this.writeAcmeChallenges();
    });
  }

  async status(): Promise<DataPlaneStatus> {
    const generation = parseInfoGeneration(await this.workers.info());
    return { version: generation !== null && generation === this.generation ? this.version : null, generation };
  }

  inflight(taskIds: readonly string[]): Promise<InflightReport> {
    return this.exclusive(async () => {
      const info = await this.workers.info();
      const generation = parseInfoGeneration(info);
      const wanted = new Set(taskIds);
      // Only the backends holding those tasks' servers: the whole `show stat` of 100,000 servers is tens of MB.
      const holding = new Set<string>();
      for (const s of this.servers.values()) {
        const task = s.taskId ?? this.taskOfServer.get(s.name);
        if (task !== undefined && task !== null && wanted.has(task)) holding.add(s.backend);
      }
      const replies = await this.runtime.run([...holding].map((b) => `show stat ${b} 4 -1`));
      const backends = new Map<string, number>();
      for (const s of replies.flatMap((reply) => (reply.startsWith('#') ? parseShowStat(reply).servers : []))) {
        const task = this.servers.get(key(s.backend, s.name))?.taskId ?? this.taskOfServer.get(s.name);
        if (task !== undefined && task !== null && wanted.has(task) && s.busy > 0) backends.set(task, (backends.get(task) ?? 0) + s.busy);
      }
      // A worker left by a reload may still serve a task's last requests: not settled until it is gone.
      return { version: this.version, settled: generation !== null && generation === this.generation && !this.workers.oldWorkersAlive(), backends };
    });
  }

  /**
   * Which app and version each backend serves now, for the metrics read from
   * HAProxy's counters (stats-metrics.ts). Each app's default version has
   * one backend per mode (HTTP, TCP).
   */
  backendOwners(): Map<string, BackendOwner> {
    const owners = new Map<string, BackendOwner>();
    for (const routing of [this.http, this.tcp]) {
      for (const [app, backend] of routing.assigned) {
        const route = this.routes.get(app);
        if (route) owners.set(backend, { app, version: route.defaultVersion, mode: routing.kind });
      }
    }
    // The backends of the versions besides the default (split policies).
    for (const [app, versions] of this.lua.extra) for (const [version, backend] of versions) owners.set(backend, { app, version, mode: 'http' });
    return owners;
  }

  /** The task a server is (null: not one the agent added), for the metrics. */
  serverTask(backend: string, server: string): string | null {
    return this.servers.get(key(backend, server))?.taskId ?? this.taskOfServer.get(server) ?? null;
  }

  holds(_table: RoutingTable): void {
    // HAProxy keeps nothing across restarts; the agent re-applies everything.
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    await this.reloader?.close();
    await this.lock.catch(() => undefined);
    this.runtime.close();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async applyNow(change: TableChange): Promise<ApplyResult> {
    const sent = { bytes: 0 };
    sent.bytes += 'show info\n'.length;
    const generation = parseInfoGeneration(await this.workers.info());
    if (change.base !== null && (change.base !== this.version || generation !== this.generation)) {
      const error = generation !== this.generation ? 'HAProxy restarted' : `HAProxy holds ${this.version ?? 'no table'}, not ${change.base}`;
      return { ok: false, bytes: sent.bytes, otherBase: true, error, message: `haproxy refused the change: ${error}` };
    }
    let looked: Set<string>;
    if (change.base === null) {
      looked = new Set([...this.routes.keys(), ...Object.keys(change.apps), ...this.http.assigned.keys(), ...this.tcp.assigned.keys()]);
      this.routes = new Map(Object.entries(change.apps).filter((e): e is [string, AppRoute] => e[1] !== null));
      this.tcpRoutes = new Map([...this.routes].filter(([, route]) => route.tcpPort !== undefined));
      // After the new routes: an app keeps the backend its hosts point at.
      await this.readBack(sent);
    } else {
      looked = new Set(Object.keys(change.apps));
      for (const [id, route] of Object.entries(change.apps)) {
        if (route === null) this.routes.delete(id);
        else this.routes.set(id, route);
        if (route?.tcpPort !== undefined) this.tcpRoutes.set(id, route);
        else this.tcpRoutes.delete(id);
      }
    }
    for (const unit of this.unplaced) looked.add(unit.slice(unit.indexOf(' ') + 1));
    const errors = await this.reconcile(sent, looked, change.base === null);
    if (errors.length > 0) {
      return { ok: false, bytes: sent.bytes, otherBase: false, error: errors.join('; '), message: `haproxy refused ${errors.length} command(s): ${errors.slice(0, 3).join('; ')}` };
    }
    this.version = change.version;
    this.adopt(generation);
    this.reloader?.persistSoon();
    return { ok: true, bytes: sent.bytes, generation };
  }

  /** After the agent's own reload (holding the lock): the new worker read back, every app re-applied. */
  private async reapplyAfterReload(): Promise<void> {
    const sent = { bytes: 0 };
    const generation = parseInfoGeneration(await this.workers.info());
    await this.readBack(sent);
    const errors = await this.reconcile(sent, new Set([...this.routes.keys(), ...this.http.assigned.keys(), ...this.tcp.assigned.keys()]), true);
    if (errors.length > 0) throw new Error(`re-applying after the reload: ${errors.slice(0, 3).join('; ')}`);
    this.adopt(generation);
    // The new worker's challenge map is the empty file: the pending ones again, not at the next sync.
    await this.writeAcmeChallenges().catch((err: Error) => this.log.warn({ err: err.message }, 'ACME: cannot write the challenges into the reloaded HAProxy; retrying at the next sync'));
  }

  private async writeAcmeChallenges(): Promise<void> {
    const sent = { bytes: 0 };
    const file = findMapFile(await this.send(sent, 'show map'), ACME_CHALLENGES_MAP_FILE);
    if (file === null) {
      // A config from before ACME on HAProxy nodes: nothing to say while nothing is pending.
      if (this.acmeChallenges.size === 0) return;
      throw new Error(`HAProxy at ${this.runtime.path} has no ${ACME_CHALLENGES_MAP_FILE} map: regenerate haproxy.cfg with this version of edgeroute haproxy-conf`);
    }
    await replaceAcmeChallengeMap((commands) => this.sendAll(sent, commands), file, this.acmeChallenges);
  }

  /** Rebuilds the model from what HAProxy holds (after a restart of either side, or a reload). */
  private async readBack(sent: { bytes: number }): Promise<void> {
    // Looked up every time: a reload may have added the TCP map.
    const maps = await this.send(sent, 'show map');
    this.http.mapFile = findMapFile(maps, HOSTS_MAP_FILE);
    if (this.http.mapFile === null) throw new Error(`HAProxy at ${this.runtime.path} has no ${HOSTS_MAP_FILE} map: is its config from edgeroute haproxy-conf?`);
    this.tcp.mapFile = findMapFile(maps, TCP_PORTS_MAP_FILE);
    const commands = [`show map ${this.http.mapFile}`, 'show stat', `get var ${POOL_PURGE_DELAY_VAR}`];
    if (this.tcp.mapFile !== null) commands.push(`show map ${this.tcp.mapFile}`, `get var ${TCP_PORTS_FROM_VAR}`, `get var ${TCP_PORTS_TO_VAR}`, `get var ${TCP_EXTRA_PORTS_VAR}`, `get var ${TCP_HOSTS_VAR}`, `get var ${TCP_BINDS_VAR}`);
    const [map, stat, purgeDelay, tcpMap, from, to, extra, hosts, binds] = await this.sendAll(sent, commands);
    const purgeDelayMs = parseGetVar(purgeDelay ?? '');
    this.poolPurgeDelayMs = purgeDelayMs ?? LEGACY_POOL_PURGE_DELAY_MS;
    if (purgeDelayMs === null && !this.saidLegacyPurgeDelay) {
      this.saidLegacyPurgeDelay = true;
      this.log.warn(
        { poolPurgeDelayMs: LEGACY_POOL_PURGE_DELAY_MS },
        `HAProxy at ${this.runtime.path} runs a config from an older edgeroute haproxy-conf: its idle connections to tasks live up to 15 s, longer than many apps' own idle timeout (Node's 5 s), which can close one under a request; regenerate it with haproxy-conf (--upstream-idle-timeout, default 4 s) and reload HAProxy`,
      );
    }
    this.tcpExtraPorts = parseExtraPorts(extra ?? '');
    const hostList = parseStrVar(hosts ?? '');
    this.tcpHosts = hostList === null ? null : hostList.split('|').filter((h) => h !== '');
    this.tcpBinds = new Set((parseStrVar(binds ?? '') ?? '').split('|').filter((b) => b !== ''));
    this.http.entries = IndexedMap.from(parseShowMap(map!));
    const report = parseShowStat(stat!);
    this.http.pool = [...report.pool, ...report.balancePool];
    this.tcp.pool = [...report.tcpPool];
    this.tcp.entries = IndexedMap.from(tcpMap === undefined ? [] : parseShowMap(tcpMap));
    const range = { from: parseGetVar(from ?? ''), to: parseGetVar(to ?? '') };
    this.tcpRange = range.from !== null && range.to !== null ? { from: range.from, to: range.to } : null;
    this.servers = ServerModels.of(report.servers.map((s) => this.modelOf(s)));
    this.learnAssignments(this.http, (route) => appHosts(route));
    this.learnAssignments(this.tcp, (route) => (route.tcpPort === undefined ? [] : [route.tcpBind === undefined ? String(route.tcpPort) : bindKey(route.tcpBind, route.tcpPort)]));
    // The Lua action's maps; the backends of app versions routed through it.
    this.lua.readBack(await this.sendAll(sent, this.lua.locate(maps)));
    this.lua.learn(this.routes, this.http.pool, this.http.assigned);
  }

  /** Keeps app → backend where HAProxy still agrees, else learns it from the map. */
  private learnAssignments(routing: Routing, keysOf: (route: AppRoute) => string[]): void {
    const byBackend = new Map<string, string>();
    for (const [app, backend] of routing.assigned) {
      if (routing.pool.includes(backend)) byBackend.set(backend, app);
      else routing.assigned.delete(app);
    }
    for (const [app, route] of this.routes) {
      if (routing.assigned.has(app)) continue;
      const backend = keysOf(route).map((k) => routing.entries.get(k)).find((b) => b !== undefined && routing.pool.includes(b) && !byBackend.has(b));
      if (backend) {
        routing.assigned.set(app, backend);
        byBackend.set(backend, app);
      }
    }
  }

  private modelOf(s: StatServer): ServerModel {
    return { backend: s.backend, name: s.name, taskId: this.taskOfServer.get(s.name) ?? null, weight: s.weight, draining: s.status === 'DRAIN' || s.status === 'MAINT' };
  }

  /** Makes HAProxy route the `looked` apps as `this.routes` says (removing those it no longer has). */
  private async reconcile(sent: { bytes: number }, looked: ReadonlySet<string>, whole: boolean): Promise<string[]> {
    const errors: string[] = [];
    // Who else listens on the apps' TCP ports, and whether the node has their addresses (read asynchronously, at most every few seconds).
    const routes = [...this.tcpRoutes.values()];
    const bound = routes.flatMap((r) => (r.tcpPort !== undefined && r.tcpBind !== undefined ? [bindKey(r.tcpBind, r.tcpPort)] : []));
    await this.portClashes.refresh(routes.flatMap((r) => (r.tcpPort === undefined || r.tcpBind !== undefined ? [] : [r.tcpPort])), this.tcp.mapFile === null ? null : this.tcpRange, { own: this.tcpBinds, at: bound });
    await this.localAddresses.refresh(routes.flatMap((r) => (r.tcpPort !== undefined && r.tcpBind !== undefined ? [r.tcpBind] : [])));
    const serverCommands: string[] = [];
    const drainCommands: string[] = [];
    const edits: Array<[Routing, Map<string, string>, Set<string>]> = [];
    for (const routing of [this.http, this.tcp]) {
      const desired = new Map<string, string>();
      const scope = new Set<string>();
      edits.push([routing, desired, scope]);
      const keysOf = (app: string, route: AppRoute): string[] => (routing.kind === 'http' ? appHosts(route) : this.tcpKeys(app, route));
      // Removed apps (or apps that no longer route this way) first, so their backends may serve new ones once empty.
      for (const app of looked) {
        const route = this.routes.get(app);
        if (route && keysOf(app, route).length > 0) continue;
        this.unplaced.delete(`${routing.kind} ${app}`);
        if (!route) {
          this.warned.delete(app);
          this.tcpWarned.delete(app);
          this.portClashes.forget(app);
        }
        if (routing.kind === 'tcp') this.reloader?.forgetPort(app);
        if (routing.kind === 'http') drainCommands.push(...this.releaseExtras(app, new Set()));
        const backend = routing.assigned.get(app);
        if (backend === undefined) continue;
        routing.assigned.delete(app);
        for (const k of routing.entries.keysOf(backend)) scope.add(k);
        drainCommands.push(...this.drainAllBut(backend, new Set()));
      }
      // Built when a placement is decided (most changes decide none); nothing it is built from changes before.
      const taken = new LazySet(() => [...routing.assigned.values(), ...(routing.kind === 'http' ? this.lua.extraBackends() : [])]);
      this.freeFrom.clear();
      for (const app of [...looked].sort()) {
        const route = this.routes.get(app);
        if (!route) continue;
        const keys = keysOf(app, route);
        if (keys.length === 0) continue;
        if (routing.kind === 'http') this.warnUnsupported(route);
        let backend = routing.assigned.get(app);
        if (backend !== undefined && routing.kind === 'http' && this.inWrongPool(backend, route, taken)) {
          // edgeroute.balance or sticky changed: a backend of the right pool, the old one drained.
          drainCommands.push(...this.drainAllBut(backend, new Set()));
          routing.assigned.delete(app);
          backend = undefined;
        }
        if (backend === undefined) {
          backend = this.freeBackend(routing, route, taken);
          if (backend === undefined) {
            const unit = `${routing.kind} ${app}`;
            if (!this.unplaced.has(unit) && this.reloader) {
              this.log.warn({ app, pool: routing.pool.length, kind: routing.kind }, `no free backend left in HAProxy's ${routing.kind === 'http' ? '' : 'TCP '}pool for app ${app}: HAProxy will be reloaded with a larger pool`);
            } else if (!this.unplaced.has(unit)) {
              if (routing.kind === 'http') this.log.warn({ app, pool: routing.pool.length }, `no free backend left in HAProxy's pool for app ${app}: it has no route on this node (raise haproxy-conf --backend-pool and restart HAProxy)`);
              else this.log.warn({ app, tcpPort: route.tcpPort, pool: routing.pool.length }, `no free backend left in HAProxy's TCP pool for app ${app}: its TCP port ${route.tcpPort} has no route on this node (raise haproxy-conf --tcp-backend-pool and restart HAProxy)`);
            }
            this.unplaced.add(unit);
            this.reloader?.request();
            continue;
          }
          routing.assigned.set(app, backend);
          taken.add(backend);
        }
        this.unplaced.delete(`${routing.kind} ${app}`);
        for (const k of routing.entries.keysOf(backend)) scope.add(k);
        for (const k of keys) {
          scope.add(k);
          // HTTP hosts get their target once every app is placed (below): the app's backend or the Lua action.
          if (routing.kind === 'tcp') desired.set(k, backend);
        }
        const { servers, drains } = this.serverCommands(backend, route);
        serverCommands.push(...servers);
        drainCommands.push(...drains);
        if (routing.kind === 'http') {
          const extra = this.placeExtras(app, route, taken);
          serverCommands.push(...extra.servers);
          drainCommands.push(...extra.drains);
        }
      }
    }
    // Planned again for the looked apps only, unless the whole table is (the plan knows which hosts that moved).
    const plan = this.lua.plan(this.routes, (app) => this.http.assigned.get(app), whole ? null : looked);
    {
      const [, desired, scope] = edits[0]!;
      // Hosts whose target may change with another app's (a shared host, or one leaving the Lua action).
      const moved = this.lua.changedHosts;
      if (moved !== null) for (const k of moved) scope.add(k);
      else {
        for (const [k, target] of this.http.entries) if (target === LUA_TARGET) scope.add(k);
        for (const [k, target] of plan.hosts) if (target === LUA_TARGET) scope.add(k);
      }
      for (const k of scope) {
        const target = plan.hosts.get(k);
        if (target !== undefined) desired.set(k, target);
      }
    }
    if (whole) {
      // Servers left in backends no app holds (an agent restarted after its apps went): drained too.
      const held = new Set([...this.http.assigned.values(), ...this.tcp.assigned.values(), ...this.lua.extraBackends()]);
      for (const backend of [...this.servers.backends()]) if (!held.has(backend)) drainCommands.push(...this.drainAllBut(backend, new Set()));
    }
    // Servers before map entries, so a new host or port goes live with its tasks; drains after them.
    errors.push(...check(serverCommands, await this.sendAll(sent, serverCommands)));
    // The Lua action's records before hosts.map sends a host to it; stale ones after.
    const sendAll = (commands: readonly string[]) => this.sendAll(sent, commands);
    errors.push(...(await this.lua.writeAhead(sendAll)));
    for (const [routing, desired, scope] of edits) {
      if (routing.mapFile === null) continue;
      errors.push(...(await this.editMap(sent, routing, diffHostMap(routing.entries, desired, scope))));
    }
    errors.push(...(await this.lua.removeStale(sendAll)));
    errors.push(...check(drainCommands, await this.sendAll(sent, drainCommands)));
    return errors;
  }

  /** The map key of an app's TCP port, or none (warned once per app) when HAProxy cannot route it. */
  private tcpKeys(app: string, route: AppRoute): string[] {
    if (route.tcpPort === undefined) return [];
    if (route.tcpBind !== undefined) return this.boundTcpKeys(app, route.tcpBind, route.tcpPort);
    const port = this.tcp.mapFile !== null && this.tcpExtraPorts.has(route.tcpPort) ? ({ ok: true, key: String(route.tcpPort) } as const) : tcpPortKey(route.tcpPort, this.tcp.mapFile === null ? null : this.tcpRange);
    if (port.ok) {
      this.tcpWarned.delete(app);
      this.portClashes.routed(app, route.tcpPort, this.tcpRange);
      this.reloader?.forgetPort(app);
      return [port.key];
    }
    // Another process holds the port: HAProxy could not bind it (one warning, naming it).
    if (this.portClashes.taken(app, route.tcpPort)) return [];
    if (this.tcpWarned.get(app) !== port.why) {
      this.tcpWarned.set(app, port.why);
      if (this.reloader) this.log.warn({ app, tcpPort: route.tcpPort }, `app ${app} asks for TCP port ${route.tcpPort} (edgeroute.tcpPort), but ${port.why}: HAProxy will be reloaded with a listener on it`);
      else this.log.warn({ app, tcpPort: route.tcpPort }, `app ${app} asks for TCP port ${route.tcpPort} (edgeroute.tcpPort), but ${port.why}: the port is not routed on this node (give the agent --haproxy-conf-dir to let it add the listener with a reload)`);
    }
    this.reloader?.wantPort(app, route.tcpPort);
    return [];
  }

  /**
   * The map key of a TCP port bound to one address (edgeroute.tcpBind), or
   * none: an address the node does not have (one warning naming the app and
   * the label; never a listener, whose reload would fail for every app), or
   * no listener receiving it yet (a reload adds one).
   */
  private boundTcpKeys(app: string, address: string, port: number): string[] {
    const where = describeTcpBind(address, port);
    const label = bindLabel(app);
    const warnOnce = (why: string, message: string) => {
      if (this.tcpWarned.get(app) === why) return;
      this.tcpWarned.set(app, why);
      this.log.warn({ app, tcpPort: port, tcpBind: address }, message);
    };
    if (!this.localAddresses.has(address)) {
      this.reloader?.forgetPort(app);
      warnOnce(`no address ${address}`, `app ${app} asks for TCP port ${where} (${label}), but this node has no address ${address}: the port is not routed on this node`);
      return [];
    }
    const listeners: TcpListeners = { hosts: this.tcpHosts, range: this.tcpRange, extraPorts: this.tcpExtraPorts, binds: this.tcpBinds };
    if (this.tcp.mapFile !== null && receives(listeners, address, port)) {
      this.tcpWarned.delete(app);
      this.portClashes.forget(app);
      this.reloader?.forgetPort(app);
      return [bindKey(address, port)];
    }
    // Another process listens there: HAProxy could not bind it (one warning, naming it). HAProxy's own listener on every address is not another's.
    if (!wildcardOn(listeners, port) && this.portClashes.takenAt(app, address, port)) return [];
    const why = this.tcp.mapFile === null ? 'HAProxy has no TCP listener' : this.tcpHosts === null ? "HAProxy's config looks TCP ports up by port only (from before edgeroute.tcpBind)" : `HAProxy does not listen on ${where}`;
    if (this.reloader) warnOnce(why, `app ${app} asks for TCP port ${where} (${label}), but ${why}: HAProxy will be reloaded with a listener on it`);
    else warnOnce(why, `app ${app} asks for TCP port ${where} (${label}), but ${why}: the port is not routed on this node (give the agent --haproxy-conf-dir to let it add the listener with a reload)`);
    this.reloader?.wantPort(app, port, address);
    return [];
  }

  /** Adds, reweights or readies the servers of one version of the app (its default) in `backend`; drains the others. */
  private serverCommands(backend: string, route: AppRoute, versionName = route.defaultVersion): { servers: string[]; drains: string[] } {
    const servers: string[] = [];
    const version = route.versions[versionName];
    const backends = version?.backends ?? [];
    const weights = scaleWeights(backends);
    const keep = new Set<string>();
    for (const b of backends) {
      const name = serverName(b.id, b.address, b.port);
      this.taskOfServer.set(name, b.id);
      keep.add(name);
      const weight = weights.get(b.id)!;
      const have = this.servers.get(key(backend, name));
      const at = `${backend}/${name}`;
      if (!have) {
        const address = b.address.includes(':') ? `[${b.address}]` : b.address;
        const id = poolKind(backend) === 'sticky' ? ` id ${stickyServerId(name)}` : '';
        servers.push(`add server ${at} ${address}:${b.port} weight ${weight} pool-max-conn -1 pool-purge-delay ${this.poolPurgeDelayMs}ms${id}`, `set server ${at} state ready`);
        this.servers.set(key(backend, name), { backend, name, taskId: b.id, weight, draining: false });
      } else {
        if (have.draining) servers.push(`set server ${at} state ready`);
        if (have.weight !== weight || have.draining) servers.push(`set server ${at} weight ${weight}`);
        have.weight = weight;
        have.draining = false;
      }
    }
    return { servers, drains: this.drainAllBut(backend, keep) };
  }

  /**
   * Every version of the app besides its default gets a pool backend of its
   * own (the Lua action picks it by policy), with that version's tasks;
   * versions the app no longer has give theirs back. A version that finds
   * no free backend waits like an app (its requests go to the default).
   */
  private placeExtras(app: string, route: AppRoute, taken: LazySet): { servers: string[]; drains: string[] } {
    const wanted = new Set(Object.keys(route.versions).filter((v) => v !== route.defaultVersion));
    // Built before any extra is let go of, as it would have been before any change.
    if (wanted.size > 0 || this.lua.extra.has(app)) taken.build();
    const out = { servers: [] as string[], drains: this.releaseExtras(app, wanted) };
    for (const version of [...wanted].sort()) {
      let backend = this.lua.extra.get(app)?.get(version);
      if (backend !== undefined && this.inWrongPool(backend, route, taken)) {
        out.drains.push(...this.drainAllBut(backend, new Set()));
        this.lua.extra.get(app)?.delete(version);
        backend = undefined;
      }
      if (backend === undefined) {
        backend = this.freeBackend(this.http, route, taken);
        if (backend === undefined) {
          if (!this.unplaced.has(`http ${app}`)) this.log.warn({ app, version, pool: this.http.pool.length }, `no free backend left in HAProxy's pool for version ${version} of app ${app}: its requests go to the default version on this node`);
          this.unplaced.add(`http ${app}`);
          this.reloader?.request();
          continue;
        }
        this.lua.setExtra(app, version, backend);
        taken.add(backend);
      }
      const { servers, drains } = this.serverCommands(backend, route, version);
      out.servers.push(...servers);
      out.drains.push(...drains);
    }
    return out;
  }

  /**
   * A free pool backend for the app: for HTTP, from the pool of its balance
   * (leastconn, sticky), else from the round-robin pool with one warning.
   */
  private freeBackend(routing: Routing, route: AppRoute, taken: LazySet): string | undefined {
    const free = (b: string) => !taken.has(b) && !this.servers.holdsAny(b);
    if (routing.kind === 'tcp') return this.firstFree(routing, 'tcp', free);
    const want = wantedPoolKind(route);
    const own = this.firstFree(routing, want, (b) => poolKind(b) === want && free(b));
    if (own !== undefined || want === 'roundrobin') return own;
    const fallback = this.firstFree(routing, 'roundrobin', (b) => poolKind(b) === 'roundrobin' && free(b));
    if (fallback !== undefined && !this.balanceFallbacks.has(route.id)) {
      this.balanceFallbacks.add(route.id);
      this.log.warn({ app: route.id, pool: want }, `no free ${want} backend left in HAProxy's pool for app ${route.id} (haproxy-conf --${want}-pool): it is balanced round robin on this node`);
    }
    return fallback;
  }

  /**
   * The first backend of the pool that passes `test`. Within one reconcile a
   * backend taken or holding servers stays so (servers only drain), so each
   * search goes on from where the last one of its kind stopped: placing
   * 10,000 apps is one pass over the pool, not one per app.
   */
  private firstFree(routing: Routing, kind: string, test: (backend: string) => boolean): string | undefined {
    const pool = routing.pool;
    const cursor = `${routing.kind} ${kind}`;
    for (let i = this.freeFrom.get(cursor) ?? 0; i < pool.length; i++) {
      if (!test(pool[i]!)) continue;
      this.freeFrom.set(cursor, i);
      return pool[i];
    }
    this.freeFrom.set(cursor, pool.length);
    return undefined;
  }

  /** Whether the backend is not of the app's balance pool while one of that pool is free (a label changed). */
  private inWrongPool(backend: string, route: AppRoute, taken: LazySet): boolean {
    const want = wantedPoolKind(route);
    if (poolKind(backend) === want) {
      this.balanceFallbacks.delete(route.id);
      return false;
    }
    return this.http.pool.some((b) => poolKind(b) === want && !taken.has(b) && !this.servers.holdsAny(b));
  }

  /** Drains the backends of the app's extra versions not in `keep`, and forgets them. */
  private releaseExtras(app: string, keep: ReadonlySet<string>): string[] {
    const versions = this.lua.extra.get(app);
    if (!versions) return [];
    const drains: string[] = [];
    for (const [version, backend] of versions) {
      if (keep.has(version)) continue;
      versions.delete(version);
      drains.push(...this.drainAllBut(backend, new Set()));
    }
    if (versions.size === 0) this.lua.extra.delete(app);
    return drains;
  }

  /** A split policy changed: the Lua action's records again (servers and hosts do not change). */
  private async syncLua(): Promise<void> {
    if (this.generation === null || !this.lua.available) return;
    const sent = { bytes: 0 };
    const sendAll = (commands: readonly string[]) => this.sendAll(sent, commands);
    const defaultBackend = (app: string) => this.http.assigned.get(app);
    this.lua.plan(this.routes, defaultBackend, null);
    const errors = [...(await this.lua.writeAhead(sendAll)), ...(await this.lua.removeStale(sendAll))];
    // rules.map changed: the folder's copy follows, for a reload or restart.
    this.reloader?.persistSoon();
    if (errors.length > 0) this.log.warn({ errors: errors.slice(0, 3) }, 'haproxy refused the split policy update');
  }

  private drainAllBut(backend: string, keep: ReadonlySet<string>): string[] {
    const commands: string[] = [];
    for (const s of this.servers.inBackend(backend)) {
      if (keep.has(s.name) || s.draining) continue;
      s.draining = true;
      commands.push(`set server ${backend}/${s.name} state drain`);
    }
    return commands;
  }

  private async editMap(sent: { bytes: number }, routing: Routing, edits: ReturnType<typeof diffHostMap>): Promise<string[]> {
    const file = routing.mapFile!;
    const entries = routing.entries;
    const sets = [...edits.set];
    const replies = await this.sendAll(sent, [...sets.map(([h, b]) => `set map ${file} ${h} ${b}`), ...edits.del.map((h) => `del map ${file} ${h}`)]);
    const adds: [string, string][] = [];
    const errors: string[] = [];
    sets.forEach(([host, backend], i) => {
      const reply = replies[i]!.trim();
      if (reply === '') entries.set(host, backend);
      else if (/entry not found/i.test(reply)) adds.push([host, backend]);
      else errors.push(`set map ${host}: ${reply}`);
    });
    edits.del.forEach((host, i) => {
      const reply = replies[sets.length + i]!.trim();
      if (reply === '' || /entry not found|key not found/i.test(reply)) entries.delete(host);
      else errors.push(`del map ${host}: ${reply}`);
    });
    const addReplies = await this.sendAll(sent, adds.map(([h, b]) => `add map ${file} ${h} ${b}`));
    adds.forEach(([host, backend], i) => {
      const reply = addReplies[i]!.trim();
      if (reply === '') entries.set(host, backend);
      else errors.push(`add map ${host}: ${reply}`);
    });
    return errors;
  }

  /** Draining servers without sessions left: maintenance, then deleted. */
  private async reap(): Promise<void> {
    const draining = new Set<string>();
    for (const s of this.servers.values()) if (s.draining) draining.add(s.backend);
    if (draining.size === 0) return;
    // Only the backends with draining servers: the whole `show stat` of 100,000 servers is tens of MB.
    const backends = [...draining];
    const servers = (await this.runtime.run(backends.map((b) => `show stat ${b} 4 -1`))).flatMap((reply) => (reply.startsWith('#') ? parseShowStat(reply).servers : []));
    const idle = servers.filter((s) => s.busy === 0 && this.servers.get(key(s.backend, s.name))?.draining === true);
    const present = new Set(servers.map((s) => key(s.backend, s.name)));
    for (const backend of backends) for (const s of [...this.servers.inBackend(backend)]) if (!present.has(key(backend, s.name))) this.servers.delete(key(backend, s.name));
    if (idle.length === 0) return;
    const replies = await this.runtime.run(idle.flatMap((s) => [`set server ${s.backend}/${s.name} state maint`, `del server ${s.backend}/${s.name}`]));
    let deleted = false;
    idle.forEach((s, i) => {
      const reply = replies[2 * i + 1]!.trim();
      if (/Server deleted/i.test(reply)) {
        deleted = true;
        this.servers.delete(key(s.backend, s.name));
        this.log.info({ backend: s.backend, server: s.name, task: this.taskOfServer.get(s.name) ?? null }, 'drained server removed from haproxy');
        this.taskOfServer.delete(s.name);
      } else {
        this.log.debug({ backend: s.backend, server: s.name, reply }, 'drained server not deleted yet');
      }
    });
    if (deleted) this.reloader?.persistSoon();
    // A backend may be free now: apps that waited for one (the pool ran out) get it without waiting for the next change.
    if (deleted && this.unplaced.size > 0) {
      const waiting = new Set([...this.unplaced].map((unit) => unit.slice(unit.indexOf(' ') + 1)));
      const errors = await this.reconcile({ bytes: 0 }, waiting, false);
      if (errors.length > 0) this.log.warn({ errors }, 'placing apps that waited for a free backend failed');
    }
  }

  private warnUnsupported(route: AppRoute): void {
    const missing = unsupportedFeatures(route);
    const said = missing.join(', ');
    if (missing.length === 0 || this.warned.get(route.id) === said) return;
    this.warned.set(route.id, said);
    this.log.warn({ app: route.id, unsupported: missing }, `app ${route.id} uses what an HAProxy node does not apply (${said}); it is routed without it on this node`);
  }

  private async send(sent: { bytes: number }, command: string): Promise<string> {
    return (await this.sendAll(sent, [command]))[0]!;
  }

  private sendAll(sent: { bytes: number }, commands: readonly string[]): Promise<string[]> {
    for (const c of commands) sent.bytes += Buffer.byteLength(c) + 1;
    return this.runtime.run(commands);
  }
}

/** The label that bound a route's TCP port: port N's (a route `<app>:N`) or the app's own, marathon-lb's in brackets. */
function bindLabel(routeId: string): string {
  const n = /:(\d+)$/.exec(routeId)?.[1];
  return n === undefined ? 'edgeroute.tcpBind, or HAPROXY_0_BIND_ADDR' : `edgeroute.port.${n}.tcpBind, or HAPROXY_${n}_BIND_ADDR`;
}

/** `get var proc.edgeroute_tcp_extra_ports`: "type=str value=<P1/P2>"; none when unset. */
function parseExtraPorts(text: string): Set<number> {
  const m = /value=<([\d/]*)>/.exec(text);
  return new Set((m?.[1] ?? '').split('/').filter((p) => p !== '').map(Number));
}

function key(backend: string, name: string): string {
  return `${backend}/${name}`;
}

/** Replies that are not what success looks like. */
function check(commands: readonly string[], replies: readonly string[]): string[] {
  const errors: string[] = [];
  commands.forEach((command, i) => {
    const reply = (replies[i] ?? '').trim();
    const ok = command.startsWith('add server') ? /New server registered/i.test(reply) : reply === '';
    if (!ok) errors.push(`${command.split(' ').slice(0, 3).join(' ')}: ${reply}`);
  });
  return errors;
}

/** A set of backends built from `fill` when first used. */
class LazySet {
  private set: Set<string> | null = null;

  constructor(private readonly fill: () => Iterable<string>) {}

  build(): Set<string> {
    this.set ??= new Set(this.fill());
    return this.set;
  }

  has(value: string): boolean {
    return this.build().has(value);
  }

  add(value: string): void {
    this.build().add(value);
  }
}
