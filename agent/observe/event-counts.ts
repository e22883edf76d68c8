/** Marathon events received, by type, for /v1/state and the metrics. */
import { eventTypeLabel } from '../core/marathon-events.js';
import type { AgentMetrics } from './metrics.js';

export class EventCounts {
  /** Events received, by type. */
  readonly byType = new Map<string, number>();
  private readonly labels = new Set<string>();

  constructor(private readonly metrics: AgentMetrics) {}

  count(eventType: string): void {
    // Types come from the bus: bounded, so that garbage cannot grow a series per name.
    const type = eventTypeLabel(eventType, this.labels);
    this.labels.add(type);
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
    this.metrics.events.inc({ type });
  }
}
