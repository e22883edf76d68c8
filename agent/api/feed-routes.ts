/** /v1/events: the live feed over WebSocket, one JSON message per event. */
import websocket from '@fastify/websocket';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';

export const feedRoutes = (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    await app.register(websocket);
    app.get('/v1/events', { websocket: true }, (socket) => {
      socket.send(JSON.stringify({ type: 'hello', at: new Date().toISOString(), version: deps.reconciler.table?.version ?? null, dataPlane: deps.dataPlane ?? 'nginx' }));
      const unsubscribe = deps.feed.subscribe((message) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      });
      socket.on('close', unsubscribe);
      socket.on('error', unsubscribe);
    });
  };
