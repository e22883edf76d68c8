import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ListingBatches } from '../../agent/core/listing-batches.js';

function inPieces(text: string, size: number): { apps: unknown[]; complete: boolean; careful: boolean; malformed: string | null } {
  const batches = new ListingBatches();
  const apps: unknown[] = [];
  for (let i = 0; i < text.length; i += size) apps.push(...batches.push(text.slice(i, i + size)));
  const careful = batches.isCareful;
  apps.push(...batches.end());
  return { apps, complete: batches.complete(), careful, malformed: batches.malformedApp };
}

const app = (i: number, extra: object = {}) => ({ id: `/web/app-${i}`, labels: { vhost: `a${i}.example` }, tasks: [{ appId: `/web/app-${i}`, id: `web_app-${i}.${i}`, ports: [i] }], ...extra });

describe('ListingBatches', () => {
  it("parses Marathon's compact listing in batches, without following its strings", () => {
    const listing = { apps: Array.from({ length: 200 }, (_, i) => app(i)) };
    for (const size of [1, 97, 4096, 1 << 20]) {
      const result = inPieces(JSON.stringify(listing), size);
      expect(result).toEqual({ apps: listing.apps, complete: true, careful: false, malformed: null });
    }
  });

  it('parses the recorded Marathon listing', () => {
    const text = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'apps', 'app_list.json'), 'utf8');
    const compact = JSON.stringify(JSON.parse(text));
    for (const listing of [text, compact]) expect(inPieces(listing, 50).apps).toEqual((JSON.parse(text) as { apps: unknown[] }).apps);
  });

  it.each([
    ['an object inside an app that starts like an app', { apps: [app(1, { deployments: [{ a: 1 }, { id: '/not-an-app' }] }), app(2), app(3)] }],
    ['apps that do not start with their id', { apps: [{ cmd: 'x', id: '/a' }, { cmd: 'y', id: '/b' }] }],
    ['strings holding the marker', { apps: [app(1, { cmd: 'echo "},{\\"id\\":\\"/x"' }), app(2, { note: '},{"id":"/' }), app(3)] }],
    ['keys after the array that look like apps', { apps: [app(1), app(2)], after: [{ a: 1 }, { id: '/z' }] }],
    ['an empty listing', { apps: [] }],
  ])('gives the apps JSON.parse finds for %s', (_title, listing) => {
    const text = JSON.stringify(listing);
    for (const size of [1, 7, 64, text.length]) {
      const result = inPieces(text, size);
      expect(result.complete).toBe(true);
      expect(result.apps).toEqual(listing.apps);
    }
  });

  it('goes the careful way when no marker comes for 4 MB', () => {
    const listing = { apps: Array.from({ length: 3 }, (_, i) => ({ id: `/big-${i}`, blob: 'x'.repeat(2 * 1024 * 1024) })) };
    const spaced = JSON.stringify(listing).replaceAll('},{', '}, {');
    const result = inPieces(spaced, 65536);
    expect(result.careful).toBe(true);
    expect(result.apps).toEqual(listing.apps);
  });

  it.each([
    ['an app that is not JSON', '{"apps":[{"id":"/a"},{"id":"/b","x":tru},{"id":"/c"},{"id":"/d"}]}'],
    ['two apps merged by a lost "},{"', '{"apps":[{"id":"/a"},{"id":"/b","x":1"id":"/c"},{"id":"/d"}]}'],
  ])('names the error of %s, whatever the pieces', (_title, text) => {
    for (const size of [1, 5, text.length]) expect(inPieces(text, size).malformed).toMatch(/JSON/);
  });

  it.each([
    ['truncated text', '{"apps":[{"id":"/a"},{"id":"/b","x":'],
    ['trailing garbage', '{"apps":[{"id":"/a"},{"id":"/b"}]} x'],
    ['no apps array', '{"message":"Internal error"}'],
    ['html', '<html><body>502 Bad Gateway</body></html>'],
  ])('is not complete for %s', (_title, text) => {
    for (const size of [1, 5, text.length]) expect(inPieces(text, size).complete).toBe(false);
  });
});

describe('ListingBatches against JSON.parse', () => {
  // Values that put the marker, or most of it, inside apps: in strings, and as objects nested at any depth.
  const PIECES = ['a', '}', '{', ',', '"', '\\', '/', '},{"id":"/', '{"id":"/', '\u00e9', '\u{1F600}'];
  function randomValue(next: () => number, depth: number): unknown {
    const roll = next() % (depth > 4 ? 3 : 6);
    if (roll === 0) return next() % 1000;
    if (roll === 1) return Array.from({ length: next() % 8 }, () => PIECES[next() % PIECES.length]).join('');
    if (roll === 2) return null;
    if (roll === 3) return Array.from({ length: next() % 4 }, () => randomValue(next, depth + 1));
    if (roll === 4) return { id: `/nested-${next() % 9}`, v: randomValue(next, depth + 1) };
    return Object.fromEntries(Array.from({ length: next() % 4 }, (_, i) => [`k${i}`, randomValue(next, depth + 1)]));
  }

  it('gives exactly the apps JSON.parse finds, for random apps in random pieces', () => {
    // mulberry32: an LCG in doubles loses its low bits past 2^53.
    let seed = 20261130;
    const next = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (t ^ (t >>> 14)) >>> 0;
    };
    let careful = 0;
    for (let round = 0; round < 300; round++) {
      const apps = Array.from({ length: next() % 8 }, (_, i) => ({ id: `/app-${i}`, ...(randomValue(next, 1) as object), tasks: [{ id: `t${i}`, v: randomValue(next, 2) }, ...(next() % 4 === 0 ? [{ id: `/like-an-app-${i}` }] : [])] }));
      const text = JSON.stringify({ apps });
      const result = inPieces(text, 1 + (next() % 300));
      if (result.careful) careful++;
      expect(result.complete).toBe(true);
      expect(result.apps).toEqual(apps);
    }
    // Both ways were taken.
    expect(careful).toBeGreaterThan(10);
    expect(careful).toBeLessThan(290);
  });
});
