/**
 * Marathon's event bus (`GET /v2/events`, server-sent events). Reconnects with
 * capped, jittered backoff, and treats a stream that sends no byte for
 * `stallTimeoutMs` as dead: Marathon writes a heartbeat every 10 s.
 */
import { createParser } from 'eventsource-parser';
import type { Logger } from 'pino';
import { parseEvent, type MarathonEvent } from '../../core/marathon-events.js';
import type { MarathonClient } from './marathon-client.js';

export interface EventStreamHandlers {
  onEvent(event: MarathonEvent): void;
  onConnected(): void;
}

export interface EventStreamOptions {
  readonly stallTimeoutMs: number;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_STREAM_OPTIONS: EventStreamOptions = { stallTimeoutMs: 30_000, minBackoffMs: 250, maxBackoffMs: 10_000 };

export class MarathonEventStream {
  private controller: AbortController | null = null;
  private stopped = false;
  private failures = 0;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  connected = false;

  constructor(
    private readonly client: MarathonClient,
    private readonly handlers: EventStreamHandlers,
    private readonly log: Logger,
    private readonly opts: EventStreamOptions = DEFAULT_STREAM_OPTIONS,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.client.followLeader();
      // stop() may have come while asking for the leader, with no stream yet to abort.
      if (this.stopped) break;
      const url = `${this.client.endpoint.baseUrl}/v2/events`;
      try {
        await this.consume(url);
        if (!this.stopped) this.log.warn({ url }, 'marathon event stream ended; reconnecting');
      } catch (err) {
        if (this.stopped) break;
        this.failures++;
        this.log.warn({ url, err: (err as Error).message, attempt: this.failures }, 'marathon event stream failed; reconnecting');
        this.client.failover();
      }
      this.connected = false;
      if (!this.stopped) await this.sleep(this.backoffMs());
    }
  }

  private async consume(url: string): Promise<void> {
    const controller = new AbortController();
    this.controller = controller;
    if (this.stopped) controller.abort();
    let watchdog: NodeJS.Timeout | undefined;
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(new Error(`no byte for ${this.opts.stallTimeoutMs} ms`)), this.opts.stallTimeoutMs);
    };
    armWatchdog();
    try {
      // fetch follows the 302 that standby Marathons (≥ 1.7) answer here.
      const res = await this.client.fetch(url, { headers: this.client.headers('text/event-stream'), signal: controller.signal });
      if (!res.ok || !res.body) throw new Error(`GET ${url} answered HTTP ${res.status}`);
      this.connected = true;
      this.failures = 0;
      this.log.info({ url: res.url || url }, 'marathon event stream attached');
      this.handlers.onConnected();
      const parser = createParser({
        onEvent: (message) => this.dispatch(message.event, message.data),
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        armWatchdog();
        parser.feed(decoder.decode(chunk, { stream: true }));
      }
    } catch (err) {
      const reason = controller.signal.reason;
      throw reason instanceof Error && controller.signal.aborted && !this.stopped ? reason : err;
    } finally {
      clearTimeout(watchdog);
    }
  }

  private dispatch(eventName: string | undefined, data: string): void {
    const parsed = parseEvent(eventName, data);
    if (!parsed.ok) {
      this.log.warn({ eventName, problem: parsed.message, data: data.slice(0, 200) }, 'ignored malformed marathon event');
      return;
    }
    this.handlers.onEvent(parsed.event);
  }

  private backoffMs(): number {
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.max(0, this.failures - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  /** A backoff pause that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
