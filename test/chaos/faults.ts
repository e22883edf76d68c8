/**
 * The faults a routing node must survive, each done to a ChaosRig under load.
 * `full` holds each fault as long as the issue asks (Redis stopped 60 s,
 * Marathon away 2 minutes); `short` is the version `npm test` runs.
 */
import { waitFor } from '../../agent/sandbox/wait.js';
import type { ChaosRig } from './rig.js';

export type ChaosScale = 'full' | 'short';

export interface FaultOutcome {
  /** Failures the fault may cause (requests cut off on a crashed backend that nginx must not retry); 0 for the rest. */
  readonly allowedFailures: number;
  readonly note: string;
}

export interface Fault {
  readonly name: string;
  readonly what: string;
  run(rig: ChaosRig, scale: ChaosScale): Promise<FaultOutcome>;
}

function hold(scale: ChaosScale, fullMs: number, shortMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, scale === 'full' ? fullMs : shortMs));
}

function seconds(scale: ChaosScale, fullMs: number, shortMs: number): string {
  return `${(scale === 'full' ? fullMs : shortMs) / 1000} s`;
}

export const FAULTS: readonly Fault[] = [
  {
    name: 'agent kill -9',
    what: 'the agent is killed -9; Marathon scales an app while it is dead; a new agent starts',
    async run(rig, scale) {
      process.kill(rig.agent.pid, 'SIGKILL');
      const instances = rig.marathon.tasks('/svc').length + 1;
      await rig.marathon.scale('/svc', instances);
      await hold(scale, 5_000, 1_000);
      rig.respawnAgent();
      return { allowedFailures: 0, note: `dead ${seconds(scale, 5_000, 1_000)}; /svc scaled to ${instances} meanwhile` };
    },
  },
  {
    name: 'redis stopped',
    what: 'Redis is stopped (SIGSTOP: connections hang rather than fail fast), then continued',
    async run(rig, scale) {
      process.kill(rig.redis.pid, 'SIGSTOP');
      try {
        await hold(scale, 60_000, 3_000);
      } finally {
        process.kill(rig.redis.pid, 'SIGCONT');
      }
      return { allowedFailures: 0, note: `stopped ${seconds(scale, 60_000, 3_000)}` };
    },
  },
  {
    name: 'marathon leader failover',
    what: 'the standby becomes leader; every health result is reset to unknown until the new leader checks again',
    async run(rig, scale) {
      await rig.marathon.forceFailover();
      await hold(scale, 10_000, 2_000);
      rig.marathon.restoreHealth();
      return { allowedFailures: 0, note: `health unknown for ${seconds(scale, 10_000, 2_000)}` };
    },
  },
  {
    name: 'marathon unreachable',
    what: 'every Marathon refuses connections',
    async run(rig, scale) {
      await rig.marathon.setUnavailable(true);
      try {
        await hold(scale, 120_000, 3_000);
      } finally {
        await rig.marathon.setUnavailable(false);
      }
      return { allowedFailures: 0, note: `away ${seconds(scale, 120_000, 3_000)}` };
    },
  },
  {
    name: 'event stream stalls',
    what: "the event stream stays open but sends nothing, not even heartbeats; Marathon scales an app meanwhile, which only a reconnect can reveal",
    async run(rig) {
      rig.marathon.stallEvents(true);
      const started = Date.now();
      try {
        const instances = rig.marathon.tasks('/svc').length + 1;
        await rig.marathon.scale('/svc', instances);
        await rig.waitHealthy(120_000);
      } finally {
        rig.marathon.stallEvents(false);
      }
      return { allowedFailures: 0, note: `the new task was routed ${((Date.now() - started) / 1000).toFixed(1)} s after the stall began` };
    },
  },
  {
    name: 'nginx restarted',
    what: 'nginx restarts without closing its sockets (USR2 + QUIT): new master, new workers, empty shared memory',
    async run(rig) {
      const before = rig.nginx.process.masterPid;
      const pushes = () => rig.agent.output().split('nginx restarted; pushing the full table').length;
      const pushesBefore = pushes();
      await rig.nginx.process.upgrade();
      if (rig.nginx.process.masterPid === before) throw new Error('nginx kept its master: it did not restart');
      await waitFor('the agent to see the new nginx and push everything', () => (pushes() > pushesBefore ? true : undefined), 10_000);
      return { allowedFailures: 0, note: `master ${before} → ${rig.nginx.process.masterPid}; the new workers served the snapshot until the agent pushed` };
    },
  },
  {
    name: 'backend crash',
    what: 'a backend dies in the middle of requests (no TASK_KILLING): nginx retries what it may on another backend',
    async run(rig) {
      const victim = rig.marathon.tasks('/svc').find((t) => t.state === 'TASK_RUNNING');
      if (!victim) throw new Error('no running task to crash');
      await waitFor('requests in flight on the victim', () => ((rig.marathon.taskStats(victim.id)?.inflight?.GET ?? 0) > 0 ? true : undefined), 10_000, 1);
      await rig.marathon.killTask(victim.id, { replace: true });
      const cutOff = rig.marathon.taskStats(victim.id)?.cutOff ?? {};
      const posts = cutOff.POST ?? 0;
      const gets = cutOff.GET ?? 0;
      return { allowedFailures: posts, note: `cut off ${gets} GET (retried) and ${posts} POST (not idempotent: may fail)` };
    },
  },
];
