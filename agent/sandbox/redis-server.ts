/**
 * A throwaway redis-server on a loopback port, for the demo and the tests;
 * optionally TLS-only (with a CA and certificate made for it) and with ACL
 * users instead of the open default user.
 */
import { execa, type ResultPromise } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { freePort } from './free-port.js';
import { stopChild } from './child-process.js';
import { waitFor } from './wait.js';

export interface RedisUser {
  readonly name: string;
  readonly password: string;
  /** ACL rules after the password; default "~* &* +@all" (every key, channel and command). */
  readonly rules?: string;
}

export interface RedisStartOptions {
  readonly binary?: string;
  /** The port to serve on (with `tls`, the TLS port); default: a free one. */
  readonly port?: number;
  /** Serve TLS only (the plain port is off), with a CA and a certificate for IP 127.0.0.1 made for this server. */
  readonly tls?: boolean;
  /**
   * With `tls`: the CA and certificate of this TLS server instead of new
   * ones, so that servers that talk to each other (a replica to its master,
   * sentinels to both; over TLS with tls-replication) trust each other.
   */
  readonly tlsLike?: RedisServer;
  /** ACL users; with any, the default user is off, so a client without a password is refused. */
  readonly users?: readonly RedisUser[];
  /** Start as a replica of the Redis on this loopback port. */
  readonly replicaOf?: number;
  /** Start as a Redis Sentinel watching the master on this loopback port (the rig in test/helpers/redis-sentinel.ts). */
  readonly sentinel?: SentinelWatch;
}

export interface SentinelWatch {
  /** The name clients ask for (--redis-master). */
  readonly master: string;
  readonly masterPort: number;
  readonly quorum: number;
  readonly downAfterMs: number;
  readonly failoverTimeoutMs: number;
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT, or rediss:// with `tls`; without credentials. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The CA (PEM) that signed the server's certificate, for --redis-ca; null without `tls`. stop() removes it. */
  readonly caFile: string | null;
  /** `url` as one of the users: USER:PASSWORD@ (`password` defaults to the user's, give another to be refused). */
  urlFor(user: string, password?: string): string;
  stop(): Promise<void>;
}

export async function startRedis(opts: RedisStartOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-redis-'));
  const users = opts.users ?? [];
  for (const user of users) {
    if (!/^[A-Za-z0-9_.-]+$/.test(user.name) || !/^\S+$/.test(user.password) || /[\r\n]/.test(user.rules ?? '')) {
      throw new Error(`redis user ${user.name}: names are [A-Za-z0-9_.-], passwords have no spaces, rules fit on one line`);
    }
  }
  // Users go in a 0600 file: on the command line their passwords would show in ps.
  const conf = join(dir, 'redis.conf');
  const lines = users.length === 0 ? [] : ['user default off', ...users.map((u) => `user ${u.name} on >${u.password} ${u.rules ?? '~* &* +@all'}`)];
  const watch = opts.sentinel;
  // A sentinel rewrites its file as it learns the replicas and elects masters: it must be its own.
  if (watch) {
    lines.push(
      `sentinel monitor ${watch.master} 127.0.0.1 ${watch.masterPort} ${watch.quorum}`,
      `sentinel down-after-milliseconds ${watch.master} ${watch.downAfterMs}`,
      `sentinel failover-timeout ${watch.master} ${watch.failoverTimeoutMs}`,
    );
  }
  writeFileSync(conf, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
  let child: ResultPromise | null = null;
  try {
    const tls = !opts.tls ? null : opts.tlsLike ? sharedCertificates(opts.tlsLike) : await makeCertificates(dir);
    const listen = tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes']
      : ['--port', String(port)];
    const server: ResultPromise = execa(
      opts.binary ?? 'redis-server',
      watch
        ? [conf, '--sentinel', ...listen, '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no']
        : [conf, ...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', ...(opts.replicaOf ? ['--replicaof', '127.0.0.1', String(opts.replicaOf)] : [])],
      { reject: false, stdio: 'ignore' },
    );
    child = server;
    const caPem = tls ? readFileSync(tls.ca, 'utf8') : null;
    await waitFor(`redis-server on port ${port}`, async () => {
      if (server.exitCode !== null) throw new Error(`redis-server exited with code ${server.exitCode}`);
      return (await ping(port, caPem)) ? true : undefined;
    });
    const url = `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
    return {
      url,
      port,
      pid: server.pid ?? 0,
      caFile: tls?.ca ?? null,
      urlFor(name, password) {
        const user = users.find((u) => u.name === name);
        if (!user) throw new Error(`no redis user ${name}`);
        return `${tls ? 'rediss' : 'redis'}://${encodeURIComponent(name)}:${encodeURIComponent(password ?? user.password)}@127.0.0.1:${port}`;
      },
      async stop() {
        await stopChild(server);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A CA and a server certificate it signed, for IP 127.0.0.1. The IP is in
 * subjectAltName (what Node checks) and is the CN too: nginx checks names with
 * X509_check_host, which reads the CN when no DNS name is present, never IPs.
 */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=edgeroute sandbox CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', file('ca.key'), '-out', file('ca.crt')]);
  await openssl(['req', '-new', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')]);
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('server.ext'), '-out', file('server.crt')]);
  // nginx's workers (user nobody) load the CA: let them through the folder to it, and nothing else.
  for (const key of ['ca.key', 'server.key']) chmodSync(file(key), 0o600);
  chmodSync(dir, 0o711);
  chmodSync(file('ca.crt'), 0o644);
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

/** The files makeCertificates wrote for `server` (they stay until that server stops). */
function sharedCertificates(server: RedisServer): { ca: string; cert: string; key: string } {
  if (!server.caFile) throw new Error(`redis on port ${server.port} serves no TLS: nothing to share`);
  const dir = dirname(server.caFile);
  return { ca: server.caFile, cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

/** Up: it answers PONG, or NOAUTH when its default user is off. */
function ping(port: number, caPem: string | null): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = caPem ? tlsConnect({ host: '127.0.0.1', port, ca: caPem }) : createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once(caPem ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(/^(\+PONG|-NOAUTH)/.test(data.toString()));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
