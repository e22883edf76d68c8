/**
 * TCP tasks and TCP traffic for HAProxy tests: echo servers that answer one
 * chunk with `<name>:<chunk>` and close, short connections through HAProxy,
 * a bounded load of them counting failures, and free loopback ports.
 */
import { connect, createServer, type Server } from 'node:net';

export class EchoServers {
  private readonly servers = new Map<number, { name: string; server: Server }>();

  /** Starts one; returns its port. */
  async start(name: string): Promise<number> {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (data) => socket.end(`${name}:${String(data)}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    this.servers.set(port, { name, server });
    return port;
  }

  nameAt(port: number): string | undefined {
    return this.servers.get(port)?.name;
  }

  /** The ports of the echo servers still running. */
  ports(): number[] {
    return [...this.servers.keys()];
  }

  async stop(port: number): Promise<void> {
    const echo = this.servers.get(port);
    this.servers.delete(port);
    await new Promise<void>((resolve) => (echo ? echo.server.close(() => resolve()) : resolve()));
  }

  async stopAll(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map((e) => new Promise<void>((resolve) => e.server.close(() => resolve()))));
  }
}

/** Where to connect: a port on 127.0.0.1, or another address (127.0.0.2, ::1) and port. */
export type TcpTarget = number | { readonly host: string; readonly port: number };

/** One short connection through HAProxy: the echo's name, or throws. */
export function exchange(target: TcpTarget, message = 'ping', timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target.port, target.host);
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), timeoutMs);
    socket.on('connect', () => socket.write(message));
    socket.on('data', (d) => (reply += String(d)));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const colon = reply.indexOf(':');
      if (colon > 0 && reply.slice(colon + 1) === message) resolve(reply.slice(0, colon));
      else reject(new Error(`unexpected reply ${JSON.stringify(reply)}`));
    });
  });
}

export interface TcpLoad {
  sent(): number;
  readonly seen: Map<string, number>;
  stop(): Promise<{ sent: number; failures: string[] }>;
}

/** A bounded loop of short connections: counts answers per echo and failures. */
export function startTcpLoad(target: TcpTarget, concurrency = 4, maxConnections = 200_000): TcpLoad {
  let stopped = false;
  let sent = 0;
  const seen = new Map<string, number>();
  const failures: string[] = [];
  const workers = Array.from({ length: concurrency }, async () => {
    while (!stopped && sent < maxConnections) {
      sent++;
      try {
        const name = await exchange(target);
        seen.set(name, (seen.get(name) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  });
  return {
    sent: () => sent,
    seen,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      return { sent, failures };
    },
  };
}

/** `count` consecutive free loopback ports, below the ephemeral range as freePort's. */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const from = 10_000 + Math.floor(Math.random() * (32_768 - 10_000 - count));
    const servers: Server[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(from + i, '127.0.0.1', resolve);
        });
        servers.push(server);
      }
      return from;
    } catch {
      // taken: try another
    } finally {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  }
  throw new Error('no free port range');
}
