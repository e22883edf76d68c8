import { createServer } from 'node:net';

// Ports are drawn below Linux's default ephemeral range (32768-60999). A port the kernel hands
// out for listen(0) comes from that range, and so does the source port of every outgoing
// connection: under load (thousands of client connections on loopback), a port picked that
// way was taken by some client between the pick and the listen (EADDRINUSE in CI).
const LOWEST = 10_000;
const HIGHEST = 32_767;

/** A TCP port on 127.0.0.1, outside the ephemeral range, that was free a moment ago. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (await isPortFree(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${LOWEST} and ${HIGHEST} after 200 tries`);
}

/** Whether `port` on 127.0.0.1 can be listened on right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
