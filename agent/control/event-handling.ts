/**
 * What Marathon's events ask of the reconciler: events that name apps re-read
 * those apps, other routing events a full sync, and a stream (re)attach a
 * full sync too, since events may have been missed while detached. An event
 * saying a task is being killed or ended takes it out at once (and re-reads
 * its app after).
 */
import { affectsRouting, appsToResync, type MarathonEvent } from '../core/marathon-events.js';
import { taskEndOf } from '../core/task-ends.js';
import type { EventStreamHandlers } from '../source/marathon/marathon-event-stream.js';
import type { Reconciler } from './reconciler.js';

/** `seen`: told of every event first (to count it). */
export function syncOnEvents(reconciler: Pick<Reconciler, 'requestSync' | 'requestAppSync' | 'taskEnded'>, seen: (event: MarathonEvent) => void): EventStreamHandlers {
  return {
    onEvent: (event) => {
      seen(event);
      if (!affectsRouting(event)) return;
      const end = taskEndOf(event);
      if (end) return reconciler.taskEnded(end, `${event.type} ${end.state}`);
      const apps = appsToResync(event);
      if (apps) reconciler.requestAppSync(apps, event.type);
      else reconciler.requestSync(event.type);
    },
    onConnected: () => reconciler.requestSync('event stream attached'),
  };
}
