/** /v1/events: the live feed over WebSocket, one JSON message per event. */
import websocket from '@fastify/websocket';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';
import { API_CLOSE_GRACE_MS } from './closing.js';

export const feedRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    await app.register(websocket);
    // The plugin's own preClose sends every client a close frame; one that
    // never answers (a laptop asleep with the dashboard open) would hold up
    // the agent's stop for ws's 30 s close timeout.
    app.addHook('preClose', async () => {
      const clients = app.websocketServer.clients;
      const deadline = Date.now() + API_CLOSE_GRACE_MS / 2;
      while (clients.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const client of clients) client.terminate();
    });
    app.get('/v1/events', { websocket: true }, (socket) => {
      socket.send(JSON.stringify({ type: 'hello', at: new Date().toISOString(), version: deps.reconciler.table?.version ?? null, dataPlane: deps.dataPlane ?? 'nginx' }));
      const unsubscribe = deps.feed.subscribe((message) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      });
      socket.on('close', unsubscribe);
      socket.on('error', unsubscribe);
    });
  };
