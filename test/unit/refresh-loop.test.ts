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

describe('RefreshLoop', () => {
  it('runs once at start, then every interval', async () => {
    const { loop, runs } = counting(40);
    loop.start();
    await sleep(150);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.length).toBeLessThanOrEqual(5);
  });

  it('makes one run of a burst of pokes, and a sooner poke is not held up by a later one', async () => {
    const { loop, runs } = counting();
    for (let i = 0; i < 10; i++) loop.poke(30);
    await sleep(80);
    expect(runs.length).toBe(1);
    loop.poke(500);
    loop.poke(0);
    await sleep(60);
    expect(runs.length).toBe(2);
    expect(runs[1] as number).toBeLessThan((runs[0] as number) + 200);
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
    await sleep(5);
    loop.poke(0);
    await sleep(100);
    expect(runs.length).toBe(2);
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
    await sleep(5);
    await loop.stop();
    expect(finished).toBe(true);
    const count = runs.length;
    loop.poke(0);
    await sleep(50);
    expect(runs.length).toBe(count);
  });
});
