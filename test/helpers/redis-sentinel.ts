/**
 * A Redis with Sentinel on loopback: a master, a replica and three sentinels
 * (quorum 2) that fail over within a few seconds of the master's death. For
 * the Sentinel tests and the fleet rig.
 */
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { readFileSync } from 'node:fs';

export interface SentinelRig {
  /** The name the sentinels monitor the master by (--redis-master). */
  readonly master: string;
  /** HOST:PORT,... for --redis-sentinels. */
  readonly sentinelList: string;
  /** With `tls`: the CA every server's and sentinel's certificate chains to (--redis-ca); null: plain TCP. */
  readonly caFile: string | null;
  readonly sentinels: readonly RedisServer[];
  /** The data servers, first the initial master. */
  readonly servers: readonly RedisServer[];
  /** The port the sentinels name as master now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master; resolves with its port. */
  killMaster(): Promise<number>;
  /** Resolves with the port of the master the sentinels promoted in place of `oldPort` (bounded wait). */
  waitForNewMaster(oldPort: number): Promise<number>;
  stop(): Promise<void>;
}

/** `tls`: every server and sentinel speaks TLS only (one CA and one certificate for 127.0.0.1), to clients and to each other. */
export async function startSentinelRig(master = 'edgeroute', opts: { tls?: boolean } = {}): Promise<SentinelRig> {
  const servers: RedisServer[] = [];
  const sentinels: RedisServer[] = [];
  /** The CA to verify every server by (PEM), with `tls`. */
  let ca: string | null = null;
  const stop = async () => {
    await Promise.all([...sentinels, ...servers].map((s) => s.stop().catch(() => undefined)));
  };
  try {
    const primary = await startRedis({ tls: opts.tls === true });
    servers.push(primary);
    const tls = opts.tls ? { tls: true, tlsLike: primary } : {};
    ca = primary.caFile === null ? null : readFileSync(primary.caFile, 'utf8');
    servers.push(await startRedis({ replicaOf: primary.port, ...tls }));
    await waitFor('the replica in sync', async () => {
      const info = await command(servers[1]!.port, ['INFO', 'replication'], ca);
      return /master_link_status:up/.test(String(info)) ? true : undefined;
    });
    const watch = { master, masterPort: primary.port, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 3000 };
    for (let i = 0; i < 3; i += 1) sentinels.push(await startRedis({ sentinel: watch, ...tls }));
    // Every sentinel knows the replica and the other sentinels before a failover can elect.
    await waitFor('the sentinels to know each other and the replica', async () => {
      for (const s of sentinels) {
        const info = (await command(s.port, ['SENTINEL', 'MASTER', master], ca)) as string[];
        const field = (name: string) => Number(info[info.indexOf(name) + 1]);
        if (field('num-slaves') < 1 || field('num-other-sentinels') < 2) return undefined;
      }
      return true;
    }, 20_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const masterPort = async () => {
    // Any sentinel that answers: a test may have stopped some.
    for (const s of sentinels) {
      const reply = (await command(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', master], ca)) as string[] | null;
      if (reply) return Number(reply[1]);
    }
    throw new Error('no sentinel answered');
  };
  return {
    master,
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    caFile: servers[0]?.caFile ?? null,
    sentinels,
    servers,
    masterPort,
    async killMaster() {
      const before = await masterPort();
      const server = servers.find((s) => s.port === before);
      if (!server) throw new Error(`no server on port ${before}`);
      process.kill(server.pid, 'SIGKILL');
      return before;
    },
    waitForNewMaster(before) {
      return waitFor(
        'a new master elected',
        async () => {
          const now = await masterPort();
          if (now === before) return undefined;
          const role = (await command(now, ['ROLE'], ca)) as string[];
          return role[0] === 'master' ? now : undefined;
        },
        // Under a heavy load an attempt can fail, and the next waits twice failover-timeout.
        60_000,
      );
    },
    stop,
  };
}

async function command(port: number, args: string[], ca: string | null): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(ca === null ? {} : { tls: { ca } }) });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}
