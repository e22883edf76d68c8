import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/** An HTTP or HTTPS server. */
export type AnyHttpServer = Server | HttpsServer;

/** Resolves once `server` listens on `port` (0: any free port). */
export function listen(server: AnyHttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Closes `server` and every connection it holds; resolves when it no longer listens. */
export function closeServer(server: AnyHttpServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
