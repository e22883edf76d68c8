/**
 * Writes need `Authorization: Bearer <token>`, compared in constant time.
 * Reads need it too with `--api-reads token`; a browser's WebSocket cannot
 * set headers, so reads also take `?token=`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

function givenToken(request: FastifyRequest, allowQuery: boolean): string {
  const header = request.headers.authorization ?? '';
  if (header.startsWith('Bearer ')) return header.slice(7);
  if (!allowQuery) return '';
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.token === 'string' ? query.token : '';
}

export function requireToken(token: string, opts: { allowQuery?: boolean } = {}) {
  const expected = Buffer.from(token);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const given = Buffer.from(givenToken(request, opts.allowQuery === true));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      // A refused WebSocket upgrade is answered on the raw socket, which nothing else closes.
      if (request.headers.upgrade) reply.raw.once('finish', () => request.raw.socket?.destroy());
      await reply.code(401).send({ error: 'missing or wrong API token' });
    }
  };
}
