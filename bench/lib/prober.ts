/** Steady GET traffic through nginx to one host, keeping nginx's view fresh to the millisecond. */
import { Agent } from 'node:http';
import { httpGet } from '../../agent/sandbox/http-get.js';

export interface Prober {
  readonly sent: () => number;
  readonly failed: () => number;
  stop(): Promise<void>;
}

export function startProber(url: string, host: string, concurrency: number, headers: Record<string, string> = {}): Prober {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let sent = 0;
  let failed = 0;
  const worker = async () => {
    while (running) {
      sent++;
      try {
        const reply = await httpGet(`${url}/`, { host, headers, agent, timeoutMs: 5_000 });
        if (reply.status !== 200) failed++;
      } catch {
        failed++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    sent: () => sent,
    failed: () => failed,
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
    },
  };
}
