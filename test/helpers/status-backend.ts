/**
 * A backend a test runs itself (a Marathon sim app's backendPorts point at
 * it): answers every request with its name and a status the test sets, so a
 * version can be made to fail (5xx) or slow down on demand.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StatusBackend {
  readonly port: number;
  /** Requests answered so far. */
  requests(): number;
  setStatus(status: number): void;
  setDelayMs(ms: number): void;
  close(): Promise<void>;
}

export async function startStatusBackend(name: string, host = '127.0.0.1'): Promise<StatusBackend> {
  let status = 200;
  let delayMs = 0;
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    req.resume();
    const answer = () => res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) }).end(name);
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => count,
    setStatus: (s) => (status = s),
    setDelayMs: (ms) => (delayMs = ms),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
