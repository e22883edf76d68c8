/**
 * The one thing the runtime API cannot do, done by a seamless reload:
 * HAProxy 2.6 cannot add a backend or a listener at run time, so when the
 * pool of pre-declared backends runs out, or an app's TCP port is outside
 * what the TCP frontend binds, the agent (given `--haproxy-conf-dir DIR`)
 * renders DIR/haproxy.cfg again from what `haproxy-conf` recorded
 * (DIR/haproxy-conf.json), with the pool doubled and the extra ports bound,
 * checks it with `haproxy -c`, and asks the master for one reload.
 *
 * Needs are batched: the first starts a short debounce, and whatever waits
 * when it fires shares one reload. The new worker starts with what the old
 * one routes: the servers are written into their backends and the map
 * entries into the map files, so no request finds an empty backend in the
 * gap before the agent re-applies. Then, still holding the adapter's lock,
 * the agent reads the new worker back and re-applies every app, which
 * places those that waited. The listening sockets pass from worker to worker
 * (`expose-fd listeners`; in master-worker mode the master re-executes with
 * `-x sockpair@N` by itself, no `-x` needed).
 *
 * Between reloads the folder's files follow what HAProxy holds (persistSoon:
 * 50 ms after a change, at most once a second), so a reload or a restart nobody
 * told the agent about (`systemctl reload`, a crash) also starts with the
 * current servers and map entries rather than empty backends.
 *
 * A config that fails `haproxy -c`, or a new worker that does not come up
 * (a port in use), leaves the old worker serving and the previous
 * haproxy.cfg back in place; the apps stay unrouted with an error naming
 * why, and the reload is tried again only after a back-off.
 */
import { execa } from 'execa';
import { createServer, createConnection } from 'node:net';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { CONF_RECORD_FILE, readConfRecord } from './conf-record.js';
import { DEFAULT_TCP_BACKEND_POOL, haproxyConfFiles, type HaproxyConfFiles, type HaproxyConfOptions } from './render.js';
import { HaproxyRuntime } from './runtime-client.js';
import { parseShowMap, parseShowStat, type StatReport, type StatServer } from './runtime-plan.js';
import { agentServers, hasNeeds, mapFileText, planReload, type ReloadNeeds } from './reload-plan.js';
import { isStopping } from './worker-watch.js';
import { DEFAULT_HAPROXY_BINARY } from './unit.js';
import { parseBind } from './bind-address.js';
import { bindKey, listenHost, parseBindKey, wildcardOn, type TcpListeners } from './tcp-binds.js';
import { describeTcpBind } from '../../core/tcp-bind.js';

export interface HaproxyReloaderOptions {
  /** The folder haproxy-conf wrote (haproxy.cfg, haproxy-conf.json, the maps). */
  readonly confDir: string;
  /** The admin socket the adapter uses. */
  readonly socket: string;
  /** How long needs gather before one reload. */
  readonly debounceMs?: number;
  /** How long the new worker may take to answer. */
  readonly readyTimeoutMs?: number;
  /** First wait after a failed reload (doubles up to 5 min). */
  readonly retryMs?: number;
  /** How long after a change (when quiet) the folder's files are brought in step. */
  readonly persistDelayMs?: number;
}

/** What the adapter lends the reloader. */
export interface ReloadHooks {
  /** Runs fn holding the adapter's lock: no apply, drain check or read-back meanwhile. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** The adapter's runtime connection (dropped after the reload so it reaches the new worker). */
  readonly runtime: HaproxyRuntime;
  /** How many HTTP and TCP apps wait for a pool backend now. */
  waiting(): { http: number; tcp: number };
  /** After the new worker answers: read it back and re-apply every app. */
  reapply(): Promise<void>;
}

export interface ReloadOutcome {
  readonly at: number;
  readonly ok: boolean;
  readonly ms: number;
  readonly backendPool: number;
  readonly tcpBackendPool: number;
  readonly extraTcpPorts: readonly number[];
  readonly extraTcpBinds: readonly string[];
  readonly error?: string;
}

export class HaproxyReloader {
  /** App → the TCP port outside what HAProxy binds that it waits for, on every listen host (address null) or one address (edgeroute.tcpBind). */
  private readonly ports = new Map<string, { readonly port: number; readonly address: string | null }>();
  /** Ports (PORT, or ADDRESS/PORT) found in use by another process, warned once. */
  private readonly busyPorts = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private persistTimer: NodeJS.Timeout | null = null;
  private persistedAt = 0;
  /** Reloads begun; a persist whose snapshot is older writes nothing. */
  private reloads = 0;
  /** Writes of the folder's files, one at a time. */
  private files: Promise<unknown> = Promise.resolve();
  private running: Promise<void> | null = null;
  private again = false;
  private notBefore = 0;
  private failures = 0;
  private closed = false;
  /** The reloads done, newest last (for tests and the log). */
  readonly outcomes: ReloadOutcome[] = [];

  constructor(
    private readonly opts: HaproxyReloaderOptions,
    private readonly hooks: ReloadHooks,
    private readonly log: Logger,
  ) {}

  /** Something waits for a reload (a full pool); it joins the next batch. */
  request(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = Math.max(this.opts.debounceMs ?? 200, this.notBefore - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.run().finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
    }, wait);
    this.timer.unref();
  }

  /** An app's TCP port is outside what HAProxy binds: the next reload adds a listener (on `address` only, for edgeroute.tcpBind). */
  wantPort(app: string, port: number, address: string | null = null): void {
    const want = this.ports.get(app);
    if (want?.port === port && want.address === address) return;
    this.ports.set(app, { port, address });
    this.request();
  }

  /** The app is gone, or its port is routed now. */
  forgetPort(app: string): void {
    this.ports.delete(app);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.persistTimer) clearTimeout(this.persistTimer);
    await this.running?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    await this.hooks.exclusive(async () => {
      const needs = await this.needs();
      if (!hasNeeds(needs)) return;
      const started = performance.now();
      try {
        const outcome = await this.reload(needs, started);
        this.failures = 0;
        this.notBefore = 0;
        this.outcomes.push(outcome);
      } catch (err) {
        this.failures++;
        const backoff = Math.min(300_000, (this.opts.retryMs ?? 10_000) * 2 ** (this.failures - 1));
        this.notBefore = Date.now() + backoff;
        const error = (err as Error).message;
        this.outcomes.push({ at: Date.now(), ok: false, ms: Math.round(performance.now() - started), backendPool: 0, tcpBackendPool: 0, extraTcpPorts: [], extraTcpBinds: [], error });
        this.log.error({ err, retryInMs: backoff, needs }, `HAProxy reload failed, the running worker keeps serving and the apps that wait stay unrouted: ${error}`);
        this.again = true;
      }
    });
  }

  private async needs(): Promise<ReloadNeeds> {
    const waiting = this.hooks.waiting();
    const ports: number[] = [];
    const binds: string[] = [];
    const bound = this.boundNow();
    for (const [app, { port, address }] of this.ports) {
      const key = address === null ? String(port) : bindKey(address, port);
      if (this.busyPorts.has(key) || ports.includes(port) || binds.includes(key)) continue;
      // A probe where HAProxy itself listens would find its own socket: one address on its wildcard host, every address beside its own address listener.
      const hosts = address === null ? this.listenHosts().filter((h) => !(h === '' && [...bound.binds].some((b) => parseBindKey(b)?.port === port))) : wildcardOn(bound, port) ? [] : [address];
      const taken = hosts.length === 0 ? null : await portTaken(hosts, port);
      if (taken) {
        this.busyPorts.add(key);
        const where = address === null ? `TCP port ${port}` : `TCP port ${describeTcpBind(address, port)}`;
        this.log.warn({ app, tcpPort: port, tcpBind: address ?? undefined, err: taken }, `HAProxy cannot listen on ${where} of app ${app}: ${taken}; the port is not routed`);
        continue;
      }
      if (address === null) ports.push(port);
      else binds.push(key);
    }
    // An app waiting for its port needs a TCP backend too once the port is bound.
    return { http: waiting.http, tcp: waiting.tcp + ports.length + binds.length, ports, binds };
  }

  private listenHosts(): string[] {
    try {
      return readConfRecord(this.opts.confDir)
        .listen.map((l) => parseBind(l).bind)
        .filter((b) => !b.startsWith('unix@'))
        .map((b) => b.slice(0, b.lastIndexOf(':')).replace(/^\[|\]$/g, ''));
    } catch {
      return [];
    }
  }

  /** What the TCP frontend listens on by the recorded options. */
  private boundNow(): TcpListeners {
    try {
      const tcp = haproxyConfFiles(readConfRecord(this.opts.confDir)).tcp;
      if (tcp === null) return { hosts: [], range: null, extraPorts: new Set(), binds: new Set() };
      const hosts = this.listenHosts().map((h) => listenHost(h));
      return { hosts, range: tcp.from !== null && tcp.to !== null ? { from: tcp.from, to: tcp.to } : null, extraPorts: new Set(tcp.extraPorts), binds: new Set(tcp.extraBinds) };
    } catch {
      return { hosts: [], range: null, extraPorts: new Set(), binds: new Set() };
    }
  }

  private async reload(needs: ReloadNeeds, started: number): Promise<ReloadOutcome> {
    this.reloads++;
    const snap = await this.snapshot();
    const { rendered, current, plan, report, previous, oldPid, recordFile } = await this.withFiles(() => this.writeState(needs, snap));
    try {
      await this.signal(rendered);
      await this.newWorker(oldPid);
    } catch (err) {
      writeAtomic(rendered.confPath, previous);
      if (recordFile) writeAtomic(recordFile.path, fileContent(current, recordFile.path));
      throw err;
    }
    const reloadedMs = Math.round(performance.now() - started);
    this.hooks.runtime.drop();
    await this.hooks.reapply();
    for (const [app, { port, address }] of this.ports) if (address === null ? plan.extraTcpPorts.includes(port) : plan.extraTcpBinds.includes(bindKey(address, port))) this.ports.delete(app);
    const outcome: ReloadOutcome = {
      at: Date.now(),
      ok: true,
      ms: Math.round(performance.now() - started),
      backendPool: plan.backendPool,
      tcpBackendPool: rendered.tcp?.pool ?? 0,
      extraTcpPorts: plan.extraTcpPorts,
      extraTcpBinds: plan.extraTcpBinds,
    };
    this.log.info(
      {
        backendPool: [report.pool.length, plan.backendPool],
        tcpBackendPool: [report.tcpPool.length, outcome.tcpBackendPool],
        extraTcpPorts: plan.extraTcpPorts,
        extraTcpBinds: plan.extraTcpBinds,
        waiting: needs,
        serversCarried: plan.carried,
        reloadMs: reloadedMs,
        totalMs: outcome.ms,
      },
      'haproxy reloaded with a larger pool or more TCP ports; every app re-applied',
    );
    return outcome;
  }

  /** What the current worker holds: its servers and every map it loaded from the folder (run holding the adapter's lock). */
  private async snapshot(): Promise<Snapshot> {
    const runtime = this.hooks.runtime;
    // The truth is what the current worker holds (the connection may still be on an older one).
    let info = await runtime.one('show info');
    if (isStopping(info)) {
      runtime.drop();
      info = await runtime.one('show info');
    }
    // Every map HAProxy loaded from the folder (hosts.map, tcp-ports.map, and any other the agent edits), as it holds it now.
    const [stat, mapList] = await runtime.run(['show stat', 'show map']);
    // The folder as haproxy.cfg names it (what haproxy-conf resolved), which --haproxy-conf-dir may spell otherwise.
    const dir = resolve(readConfRecord(this.opts.confDir).outDir);
    const mapFiles = listMapFiles(mapList!).filter((f) => f.startsWith(`${dir}/`));
    const mapReplies = await runtime.run(mapFiles.map((f) => `show map ${f}`));
    return { oldPid: workerPid(info), report: parseShowStat(stat!), running: agentServers(stat!), maps: new Map(mapFiles.map((f, i) => [f, mapFileText(parseShowMap(mapReplies[i]!))])) };
  }

  /**
   * Writes a snapshot into the folder: haproxy.cfg with the servers in their
   * backends (pools grown by `needs`), every map into its file, and the
   * record. Checks the config with `haproxy -c` first; a file already right
   * is not rewritten.
   */
  private async writeState(needs: ReloadNeeds, snap: Snapshot) {
    // The record as read: written back below only if nobody changed it meanwhile
    // (haproxy-conf run again, an operator's edit), never over their change.
    const recordBefore = readOr(join(this.opts.confDir, CONF_RECORD_FILE), null);
    const record = readConfRecord(this.opts.confDir);
    const current = haproxyConfFiles(record);
    const { oldPid, report } = snap;
    const plan = planReload(report, needs, {
      tcpBackendPool: record.tcpBackendPool ?? DEFAULT_TCP_BACKEND_POOL,
      extraTcpPorts: record.extraTcpPorts ?? [],
      extraTcpBinds: record.extraTcpBinds ?? [],
      tcpSection: current.tcp !== null,
    }, snap.running);
    const next: HaproxyConfOptions = {
      ...record,
      backendPool: plan.backendPool,
      extraTcpPorts: plan.extraTcpPorts,
      extraTcpBinds: plan.extraTcpBinds,
      servers: plan.servers,
      ...(current.tcp !== null || plan.extraTcpPorts.length > 0 || plan.extraTcpBinds.length > 0 ? { tcpBackendPool: plan.tcpBackendPool } : {}),
    };
    const rendered = haproxyConfFiles(next);
    const confText = fileContent(rendered, rendered.confPath);
    const previous = readFileSync(rendered.confPath, 'utf8');
    const recordFile = rendered.files.find((f) => f.path.endsWith('.json'));
    const mapTexts = new Map(snap.maps);
    if (rendered.tcp && !mapTexts.has(rendered.tcp.map)) mapTexts.set(rendered.tcp.map, '');
    let changed = false;
    if (confText !== previous) {
      const candidate = `${rendered.confPath}.next`;
      writeFileSync(candidate, confText, { mode: 0o644 });
      const check = await execa(record.haproxy ?? DEFAULT_HAPROXY_BINARY, ['-c', '-q', '-f', candidate], { reject: false, all: true, timeout: 30_000 });
      if (check.exitCode !== 0) throw new Error(`haproxy -c refused the re-rendered config (${candidate} kept): ${String(check.all ?? '').trim().slice(0, 500)}`);
      writeAtomic(`${rendered.confPath}.previous`, previous);
      renameSync(candidate, rendered.confPath);
      changed = true;
    }
    // The maps as a new worker will load them: what this one routes now.
    for (const [file, text] of mapTexts) {
      if (readOr(file, null) === text) continue;
      writeAtomic(file, text);
      changed = true;
    }
    if (recordFile) {
      const onDisk = readOr(recordFile.path, null);
      if (onDisk !== recordFile.content && onDisk === recordBefore) writeAtomic(recordFile.path, recordFile.content);
    }
    return { rendered, current, plan, report, previous, oldPid, recordFile, changed };
  }

  /**
   * Keeps the folder's files in step with what HAProxy holds (50 ms after a
   * change, at most once a second): a reload or restart the agent did not
   * ask for (`systemctl reload`, a crash) then starts with the current
   * servers and map entries instead of empty backends, until the agent
   * notices the new worker and re-applies the difference.
   */
  persistSoon(): void {
    if (this.closed || this.persistTimer) return;
    // Soon after a change when quiet; at most once a second during a burst (each write runs haproxy -c).
    const wait = Math.max(this.opts.persistDelayMs ?? 50, this.persistedAt + 1_000 - Date.now());
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.persistedAt = Date.now();
      const reloads = this.reloads;
      // Only the reading holds the adapter's lock; rendering and haproxy -c do not hold up applies.
      void this.hooks
        .exclusive(() => this.snapshot())
        .then((snap) =>
          this.withFiles(async () => {
            // A reload since the snapshot wrote newer files.
            if (this.closed || reloads !== this.reloads) return;
            const { changed } = await this.writeState({ http: 0, tcp: 0, ports: [], binds: [] }, snap);
            if (changed) this.log.debug('haproxy.cfg and maps follow what HAProxy holds');
          }),
        )
        .catch((err: Error) => this.log.warn({ err }, `cannot keep ${this.opts.confDir} in step with what HAProxy holds: a reload or restart of HAProxy would start from older routes until the agent re-applies`));
    }, wait);
    this.persistTimer.unref();
  }

  private withFiles<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.files.then(fn, fn);
    this.files = run.catch(() => undefined);
    return run;
  }

  /** One reload: through the master CLI when it has one (haproxy -S, the systemd unit), else SIGUSR2 to the master. */
  private async signal(files: HaproxyConfFiles): Promise<void> {
    if (existsSync(files.masterSocket)) {
      await masterCommand(files.masterSocket, 'reload');
      return;
    }
    const pid = Number(readFileSync(files.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${files.pidFile} holds no master PID`);
    try {
      process.kill(pid, 'SIGUSR2');
    } catch (err) {
      throw new Error(`cannot signal HAProxy's master (PID ${pid} from ${files.pidFile}): ${(err as Error).message}`);
    }
  }

  /** Waits until the admin socket answers from a worker other than `oldPid`. */
  private async newWorker(oldPid: number | null): Promise<void> {
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15_000);
    let last = '';
    while (Date.now() < deadline) {
      const probe = new HaproxyRuntime(this.opts.socket, 2_000);
      try {
        const info = await probe.one('show info');
        const pid = workerPid(info);
        if (pid !== null && pid !== oldPid && !isStopping(info)) return;
        last = `worker ${pid} still answers`;
      } catch (err) {
        last = (err as Error).message;
      } finally {
        probe.close();
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`HAProxy started no new worker within ${this.opts.readyTimeoutMs ?? 15_000} ms of the reload (${last}); its log says why (a port in use?)`);
  }
}

/** `show map` (no argument): the files of the loaded maps. */
function listMapFiles(text: string): string[] {
  const files: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^-?\d+ \(([^)]+)\)/.exec(line.trim());
    if (m && m[1]!.startsWith('/')) files.push(m[1]!);
  }
  return files;
}

interface Snapshot {
  readonly oldPid: number | null;
  readonly report: StatReport;
  /** Every server the agent added, in any backend. */
  readonly running: readonly StatServer[];
  /** Map file → its text as HAProxy holds it. */
  readonly maps: ReadonlyMap<string, string>;
}

function workerPid(info: string): number | null {
  const pid = Number(/^Pid: *(\d+)/m.exec(info)?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function fileContent(files: HaproxyConfFiles, path: string): string {
  const file = files.files.find((f) => f.path === path);
  if (!file) throw new Error(`nothing rendered for ${path}`);
  return file.content;
}

function readOr(path: string, fallback: string | null): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

/** The master CLI (haproxy -S): one command, the reply until it closes. */
function masterCommand(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let reply = '';
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy(new Error(`HAProxy's master CLI at ${path} did not answer`)));
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (d: string) => (reply += d));
    socket.on('error', (err) => reject(new Error(`HAProxy's master CLI at ${path}: ${err.message}`)));
    socket.on('close', () => resolve(reply));
  });
}

/** Whether another process listens on the port on one of the hosts ('' for every address), or a host is not the node's; the error when so. */
async function portTaken(hosts: readonly string[], port: number): Promise<string | null> {
  for (const host of hosts.length > 0 ? hosts : ['']) {
    const taken = await new Promise<string | null>((resolve) => {
      const server = createServer();
      // EADDRNOTAVAIL: the address went from the node since the adapter looked (HAProxy's new worker could not bind it either).
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? `${host === '' ? `*:${port}` : describeTcpBind(host, port)} is in use by another process` : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this node` : null));
      server.listen({ port, host: host === '' ? undefined : host, exclusive: true }, () => server.close(() => resolve(null)));
    });
    if (taken) return taken;
  }
  return null;
}
