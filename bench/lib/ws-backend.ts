/**
 * A WebSocket echo backend in its own process, so that its memory is measured
 * apart from nginx's: `node dist/bench/lib/ws-backend.js` prints
 * {"port":N} once listening, answers plain GETs with 200 and echoes every
 * message. It exits on SIGTERM, or when its parent's stdin closes.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

function main(): void {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ws-backend');
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[1]?.endsWith('ws-backend.js')) main();
