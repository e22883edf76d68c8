import { afterEach, describe, expect, it } from 'vitest';
import { RefreshLoop } from '../../agent/control/refresh-loop.js';

const loops: RefreshLoop[] = [];
afterEach(async () => {
  for (const loop of loops.splice(0)) await loop.stop();
});

function counting(intervalMs = 60_000, work: () => Promise<void> = async () => undefined) {
  const runs: number[] = [];
  const errors: string[] = [];
  const started = Date.now();
  const loop = new RefreshLoop(
    async () => {
      runs.push(Date.now() - started);
      await work();
    },
    (err) => errors.push(err.message),
    intervalMs,
  );
  loops.push(loop);
  return { loop, runs, errors };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (bounded) until `count()` reaches `n`: timers run late on a busy machine. */
async function until(count: () => number, n: number): Promise<void> {
  for (let waited = 0; count() < n; waited += 5) {
    if (waited > 3_000) throw new Error(`only ${count()} of ${n} runs after 3 s`);
    await sleep(5);
  }
}

describe('RefreshLoop', () => {
  it('runs once at start, then every interval', async () => {
    const { loop, runs } = counting(40);
    loop.start();
    await until(() => runs.length, 3);
    // Not faster than the interval: the third run comes two intervals after the first at least.
    expect((runs[2] as number) - (runs[0] as number)).toBeGreaterThanOrEqual(75);
  });

  it('makes one run of a burst of pokes, and a sooner poke is not held up by a later one', async () => {
    const { loop, runs } = counting();
    for (let i = 0; i < 10; i++) loop.poke(30);
    await until(() => runs.length, 1);
    await sleep(60);
    expect(runs.length).toBe(1);
    const asked = Date.now();
    loop.poke(2_000);
    loop.poke(0);
    await until(() => runs.length, 2);
    expect(Date.now() - asked).toBeLessThan(1_000);
  });

  it('runs one at a time, and goes on after a run that throws', async () => {
    let active = 0;
    let most = 0;
    let first = true;
    const { loop, runs, errors } = counting(60_000, async () => {
      active++;
      most = Math.max(most, active);
      await sleep(30);
      active--;
      if (first) {
        first = false;
        throw new Error('boom');
      }
    });
    loop.poke(0);
    await until(() => runs.length, 1);
    loop.poke(0);
    await until(() => runs.length, 2);
    await until(() => (active === 0 ? 1 : 0), 1);
    expect(most).toBe(1);
    expect(errors).toEqual(['boom']);
  });

  it('stop waits for the run under way and runs nothing after', async () => {
    let finished = false;
    const { loop, runs } = counting(10, async () => {
      await sleep(40);
      finished = true;
    });
    loop.start();
    await until(() => runs.length, 1);
    await loop.stop();
    expect(finished).toBe(true);
    const count = runs.length;
    loop.poke(0);
    await sleep(50);
    expect(runs.length).toBe(count);
  });
});
