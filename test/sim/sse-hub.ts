import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MarathonEvent } from './marathon-events.js';

/**
 * The `/v2/events` streams, framed the way Jetty's EventSourceServlet (used by Marathon) writes them:
 * `event: <type>\r\ndata: <json>\r\n\r\n`, a bare `\r\n` heartbeat, no `id:` field.
 */

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream;charset=UTF-8',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Connection: 'close',
} as const;

const HEARTBEAT = '\r\n';

interface SseClient {
  readonly res: ServerResponse;
  readonly remoteAddress: string;
  /** null: every event type. */
  readonly eventTypes: ReadonlySet<string> | null;
}

export function frameEvent(event: MarathonEvent): string {
  return `event: ${event.eventType}\r\ndata: ${JSON.stringify(event)}\r\n\r\n`;
}

export class SseHub {
  private readonly clients = new Set<SseClient>();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private stalled = false;

  constructor(heartbeatMs: number) {
    this.heartbeatTimer = setInterval(() => this.writeToAll(HEARTBEAT), heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /**
   * Opens a stream on `res`. `onGone` runs when the client hangs up by itself,
   * not when the hub drops it (a Marathon going down tells nobody).
   */
  attach(req: IncomingMessage, res: ServerResponse, eventTypes: ReadonlySet<string> | null, onGone: (remoteAddress: string) => void): string {
    const client: SseClient = { res, remoteAddress: req.socket.remoteAddress ?? 'unknown', eventTypes };
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    this.clients.add(client);
    res.on('close', () => {
      if (this.clients.delete(client)) onGone(client.remoteAddress);
    });
    return client.remoteAddress;
  }

  publish(event: MarathonEvent): void {
    const frame = frameEvent(event);
    for (const client of this.clients) {
      if (client.eventTypes === null || client.eventTypes.has(event.eventType)) this.write(client, frame);
    }
  }

  /** Writes `frame` as is to every stream, whatever event types it asked for: for malformed or fuzzed events. */
  publishRaw(frame: string): void {
    this.writeToAll(frame);
  }

  /** While stalled, streams stay open but get nothing: events are dropped, heartbeats skipped. */
  setStalled(stalled: boolean): void {
    this.stalled = stalled;
  }

  clientCount(): number {
    return this.clients.size;
  }

  /** Cuts every stream, as a crashing Marathon would. */
  disconnectAll(): void {
    const clients = [...this.clients];
    this.clients.clear();
    for (const client of clients) client.res.destroy();
  }

  close(): void {
    clearInterval(this.heartbeatTimer);
    this.disconnectAll();
  }

  private writeToAll(chunk: string): void {
    for (const client of this.clients) this.write(client, chunk);
  }

  private write(client: SseClient, chunk: string): void {
    if (this.stalled || client.res.writableEnded || client.res.destroyed) return;
    client.res.write(chunk);
  }
}
