import { describe, expect, it } from 'vitest';
import { parseIsoMillis } from '../../agent/core/iso-time.js';

/** Same as Date.parse, NaN included. */
function expectSame(text: string): void {
  const expected = Date.parse(text);
  expect(parseIsoMillis(text), text).toBe(expected);
}

describe('parseIsoMillis', () => {
  it("reads Marathon's timestamps as Date.parse does", () => {
    for (const text of ['2026-11-30T05:31:47.026Z', '1970-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '2024-02-29T12:00:00.500Z', '0000-01-01T00:00:00.000Z', '0050-06-15T00:00:00.000Z', '9999-12-31T23:59:59.999Z']) expectSame(text);
  });

  it('leaves every other text to Date.parse, with its answer', () => {
    for (const text of [
      '2026-02-30T00:00:00.000Z', // rolls over in V8
      '2026-04-31T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-01-00T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '2026-01-01T24:00:00.001Z',
      '2026-01-01T23:60:00.000Z',
      '2026-01-01T23:59:60.000Z',
      '2026-01-01T23:59:59Z',
      '2026-01-01T23:59:59.1234Z',
      '2026-01-01T23:59:59.123+01:00',
      '2026-01-01 23:59:59.123Z',
      '2026-1a-01T23:59:59.123Z',
      '2026-01-01T23:59:59.12aZ',
      '+02026-01-01T00:00:00.000Z',
      '',
      'yesterday',
    ])
      expectSame(text);
  });

  it('agrees with Date.parse on 100,000 random times in that form, any day 1-31 of any month', () => {
    let seed = 20261130;
    const next = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    for (let i = 0; i < 100_000; i++) {
      const text = `${pad(next(10_000), 4)}-${pad(1 + next(12), 2)}-${pad(1 + next(31), 2)}T${pad(next(24), 2)}:${pad(next(60), 2)}:${pad(next(60), 2)}.${pad(next(1000), 3)}Z`;
      const expected = Date.parse(text);
      if (parseIsoMillis(text) !== expected) expect(parseIsoMillis(text), text).toBe(expected);
    }
  });
});
