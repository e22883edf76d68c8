/**
 * Full TLS handshakes in a loop, in its own process:
 * `node dist/bench/lib/tls-client.js PORT SERVERNAME SECONDS CONCURRENCY`
 * prints {"handshakes":N,"resumed":N,"errors":N,"seconds":S}. Each connection
 * offers no session (no ticket, no id), so every handshake is a full one; it
 * is closed as soon as the handshake completes. Bounded by SECONDS.
 */
import { connect } from 'node:tls';

function main(argv: string[]): void {
  const [port, servername, seconds, concurrency] = [Number(argv[0]), argv[1] ?? '', Number(argv[2]), Number(argv[3])];
  let handshakes = 0;
  let resumed = 0;
  let errors = 0;
  let lastError = '';
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  let open = 0;
  const one = () => {
    if (performance.now() >= stopAt) {
      if (--open === 0) {
        process.stdout.write(`${JSON.stringify({ handshakes, resumed, errors, lastError, seconds: (performance.now() - started) / 1000 })}\n`);
      }
      return;
    }
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, session: undefined });
    socket.setTimeout(5_000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('secureConnect', () => {
      handshakes++;
      if (socket.isSessionReused()) resumed++;
      socket.destroy();
    });
    socket.once('error', (err) => {
      errors++;
      lastError = err.message;
    });
    socket.once('close', one);
  };
  for (let i = 0; i < concurrency; i++) {
    open++;
    one();
  }
}

if (process.argv[1]?.endsWith('tls-client.js')) main(process.argv.slice(2));
