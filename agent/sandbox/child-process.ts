/** Stops a child we started, by PID: politely first, then for sure. */
import type { ResultPromise } from 'execa';

export async function stopChild(child: ResultPromise, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await child.catch(() => undefined);
    return;
  }
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.catch(() => undefined);
  clearTimeout(timer);
}
