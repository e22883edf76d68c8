/**
 * The baseline of the zero-loss benchmark: a router the way marathon-lb and
 * nixy work. On every Marathon event (debounced like edgeroute's agent) it
 * reads the app, writes an upstream block of its TASK_RUNNING tasks and runs
 * `nginx -s reload`.
 */
import { parseAppResponse } from '../../agent/core/marathon-apps.js';
import type { MarathonSim } from '../../test/sim/marathon-sim.js';
import type { PlainProxy } from './nginx-fixtures.js';

export interface ReloadRouter {
  readonly reloads: () => number;
  stop(): Promise<void>;
}

export function startReloadRouter(marathon: MarathonSim, proxy: PlainProxy, appId: string, debounceMs = 20): ReloadRouter {
  let reloads = 0;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const sync = async () => {
    const res = await fetch(`${marathon.url}/v2/apps${appId}?embed=app.tasks`);
    const { snapshot } = parseAppResponse(await res.json());
    const tasks = snapshot.apps[0]?.tasks.filter((t) => t.state === 'TASK_RUNNING') ?? [];
    const before = reloads;
    await proxy.setUpstream(tasks.map((t) => ({ host: t.host, port: t.ports[0] as number })));
    reloads = before + 1;
  };
  const unsubscribe = marathon.onEvent(() => {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      running = running.then(sync).catch(() => undefined);
    }, debounceMs);
  });
  void sync();
  return {
    reloads: () => reloads,
    async stop() {
      stopped = true;
      unsubscribe();
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
