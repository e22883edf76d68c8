/** The agent's live feed: routing changes, publications, policy changes and errors, as they happen. */
import { EventEmitter } from 'node:events';

export type FeedEvent =
  /** `changed` and `removed` list at most 200 apps; `total` counts them all. */
  | { type: 'routing-changed'; version: string; changed: readonly string[]; removed: readonly string[]; total: number }
  | { type: 'published'; app: string; version: string; taskId: string }
  | { type: 'unpublished'; app: string; version: string; taskId: string; reason: string }
  | { type: 'policy-changed'; app: string }
  | { type: 'error'; message: string };

export type FeedMessage = FeedEvent & { at: string };

export class AgentFeed {
  private readonly emitter = new EventEmitter();
  private readonly recent: FeedMessage[] = [];

  constructor(private readonly keep = 50) {
    // Dashboards and `edgeroute watch` sessions come and go; none is a leak.
    this.emitter.setMaxListeners(0);
  }

  publish(event: FeedEvent): void {
    const message = { ...event, at: new Date().toISOString() } as FeedMessage;
    this.recent.push(message);
    if (this.recent.length > this.keep) this.recent.shift();
    this.emitter.emit('message', message);
  }

  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.emitter.on('message', listener);
    return () => this.emitter.off('message', listener);
  }

  latest(): readonly FeedMessage[] {
    return this.recent;
  }
}
