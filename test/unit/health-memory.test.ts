import { describe, expect, it } from 'vitest';
import type { RememberedHealth } from '../../agent/core/lifecycle.js';
import { HealthMemory, type HealthStore } from '../../agent/control/health-memory.js';
import { captureLog } from '../helpers/log-capture.js';

function fakeStore() {
  const data = new Map<string, RememberedHealth>();
  const calls = { load: [] as string[][], save: [] as string[][] };
  let down = false;
  const store: HealthStore = {
    async load(ids) {
      if (down) throw new Error('connect ECONNREFUSED');
      calls.load.push([...ids]);
      return new Map(ids.filter((id) => data.has(id)).map((id) => [id, data.get(id) as RememberedHealth]));
    },
    async save(entries) {
      if (down) throw new Error('connect ECONNREFUSED');
      calls.save.push([...entries].map(([id]) => id));
      for (const [id, health] of entries) data.set(id, health);
    },
  };
  return { store, data, calls, setDown: (value: boolean) => (down = value) };
}

const healthy: RememberedHealth = { healthy: true, since: '2026-11-01T00:00:01.000Z' };

describe('HealthMemory', () => {
  it('recalls from the store what it does not know, once', async () => {
    const fake = fakeStore();
    fake.data.set('a', healthy);
    const memory = new HealthMemory(fake.store, 3600, captureLog().log);
    expect((await memory.recall(['a', 'b'])).get('a')).toEqual(healthy);
    await memory.recall(['a', 'b']);
    expect(fake.calls.load).toEqual([['a', 'b']]);
  });

  it('writes only changed observations', async () => {
    const fake = fakeStore();
    const memory = new HealthMemory(fake.store, 3600, captureLog().log);
    await memory.remember(new Map([['a', healthy]]));
    await memory.remember(new Map([['a', healthy]]));
    await memory.remember(new Map([['a', { healthy: false, since: null }]]));
    expect(fake.calls.save).toEqual([['a'], ['a']]);
    expect(fake.data.get('a')).toEqual({ healthy: false, since: null });
  });

  it('rewrites entries older than half their TTL, so a long-lived task is never forgotten', async () => {
    const fake = fakeStore();
    let now = 0;
    const memory = new HealthMemory(fake.store, 100, captureLog().log, () => now);
    await memory.remember(new Map([['a', healthy]]));
    now = 40_000;
    await memory.remember(new Map([['a', healthy]]));
    now = 60_000;
    await memory.remember(new Map([['a', healthy]]));
    expect(fake.calls.save).toEqual([['a'], ['a']]);
  });

  it('rewrites at half its TTL only what it still holds, once: not each flap of a task, nor a forgotten one', async () => {
    const fake = fakeStore();
    let now = 0;
    const memory = new HealthMemory(fake.store, 100, captureLog().log, () => now);
    const down: RememberedHealth = { healthy: false, since: null };
    for (let flap = 0; flap < 3000; flap++) {
      now = flap;
      await memory.remember([['flappy', flap % 2 === 0 ? healthy : down], ['steady', healthy], ['gone', healthy]]);
    }
    memory.forgetExcept(new Set(['flappy', 'steady']));
    fake.calls.save.length = 0;
    now = 60_000;
    await memory.remember([]);
    expect(fake.calls.save).toEqual([['steady', 'flappy']]);
    expect(fake.data.get('flappy')).toEqual(down);
  });

  it('merges a large batch a slice per turn of the event loop, and whatever reads the memory sees all of it', async () => {
    const fake = fakeStore();
    const memory = new HealthMemory(fake.store, 3600, captureLog().log);
    const many = Array.from({ length: 20_000 }, (_, i) => [`t${i}`, healthy] as const);
    let turns = 0;
    let done = false;
    const spin = () => {
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    const first = memory.remember(many);
    // A later, small batch is applied after the large one, not before it.
    const second = memory.remember([['t7', { healthy: false, since: null }]]);
    await Promise.all([first, second]);
    done = true;
    expect(turns).toBeGreaterThanOrEqual(3);
    expect(memory.size).toBe(20_000);
    expect(memory.view().get('t7')).toEqual({ healthy: false, since: null });
    expect(fake.data.get('t7')).toEqual({ healthy: false, since: null });
    // t7's first state was replaced before it was written: each task once.
    expect(fake.calls.save.flat()).toHaveLength(20_000);

    // Read at once, before any turn: all of it.
    const later = new HealthMemory(null, 3600, captureLog().log);
    void later.remember(many);
    expect(later.view().size).toBe(20_000);
  });

  it('falls back to its own memory when the store is down, warns once, and catches up later', async () => {
    const fake = fakeStore();
    const logs = captureLog();
    const memory = new HealthMemory(fake.store, 3600, logs.log);
    fake.setDown(true);
    await memory.remember(new Map([['a', healthy]]));
    await memory.remember(new Map([['b', healthy]]));
    expect((await memory.recall(['a', 'c'])).get('a')).toEqual(healthy);
    expect(memory.isDegraded).toBe(true);
    expect(logs.lines().filter((l) => String(l.msg).includes('falls back'))).toHaveLength(1);

    fake.setDown(false);
    await memory.remember(new Map());
    expect(memory.isDegraded).toBe(false);
    expect([...fake.data.keys()].sort()).toEqual(['a', 'b']);
    expect(logs.has((l) => String(l.msg).includes('reachable again'))).toBe(true);
  });

  it('forgets tasks that no longer exist', async () => {
    const memory = new HealthMemory(null, 3600, captureLog().log);
    await memory.remember(new Map([['a', healthy], ['b', healthy]]));
    memory.forgetExcept(new Set(['b']));
    expect([...memory.view().keys()]).toEqual(['b']);
  });

  it('writes one at a time: what changes during a write goes in the next, never written twice at once', async () => {
    const data = new Map<string, RememberedHealth>();
    const saves: string[][] = [];
    let inFlight = 0;
    let release: () => void = () => undefined;
    const store: HealthStore = {
      async load() {
        return new Map();
      },
      async save(entries) {
        inFlight++;
        expect(inFlight).toBe(1);
        saves.push([...entries].map(([id, h]) => `${id}=${h.healthy}`));
        await new Promise<void>((resolve) => (release = resolve));
        for (const [id, h] of entries) data.set(id, h);
        inFlight--;
      },
    };
    const memory = new HealthMemory(store, 3600, captureLog().log);
    const first = memory.remember(new Map([['a', healthy], ['b', healthy]]));
    await new Promise((r) => setTimeout(r, 5));
    // While the first write is under way: a changes, c is new; b is unchanged.
    const second = memory.remember(new Map([['a', { healthy: false, since: null }], ['b', healthy], ['c', healthy]]));
    release();
    await new Promise((r) => setTimeout(r, 5));
    release();
    await Promise.all([first, second]);
    expect(saves).toEqual([['a=true', 'b=true'], ['a=false', 'c=true']]);
    expect(data.get('a')?.healthy).toBe(false);
    // Nothing is left unsaved: a third call writes nothing.
    await memory.remember(new Map());
    expect(saves).toHaveLength(2);
  });
});
