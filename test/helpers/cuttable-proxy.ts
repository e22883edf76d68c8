/**
 * A TCP proxy on loopback that a test can cut, to split a routing node from
 * Redis: while cut, every open connection is reset and new ones are closed
 * at once, as a network partition with a router answering RST would do.
 * Each connection goes to the port `target()` names when it opens: for Redis
 * through Sentinel, the master the sentinels name now, as a managed Redis's
 * endpoint follows a failover.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from '../../agent/sandbox/free-port.js';

export interface CuttableProxy {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly isCut: boolean;
  /** Resets every connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startCuttableProxy(target: () => Promise<number>): Promise<CuttableProxy> {
  const open = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return void client.resetAndDestroy();
    client.pause();
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    target().then(
      (port) => {
        if (cut || client.destroyed) return void client.destroy();
        const upstream = connect(port, '127.0.0.1');
        open.add(upstream);
        upstream.on('close', () => {
          open.delete(upstream);
          client.destroy();
        });
        upstream.on('error', () => undefined);
        client.on('close', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      },
      () => client.destroy(),
    );
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    restore() {
      cut = false;
    },
    async stop() {
      cut = true;
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
