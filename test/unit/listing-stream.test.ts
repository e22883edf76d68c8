import { describe, expect, it } from 'vitest';
import { ArrayItemStream } from '../../agent/core/listing-stream.js';

/** All items of `text` pushed at once, or null when it is not shaped so. */
function topLevelArrayItems(text: string, key: string): string[] | null {
  const stream = new ArrayItemStream(key);
  const items = stream.push(text);
  return stream.complete() ? items : null;
}


const TEXTS = [
  '{"apps":[{"id":"/a"},{"id":"/b"}]}',
  ' {\n "apps" : [ {"id": "/a"} ,\n {"id":"/b"}\n ] \n} ',
  '{"apps":[{"cmd":"echo \\"}],[{\\" , x"},{"id":"/b"}]}',
  '{"apps":[{"ports":[1,2],"labels":{"a":{"b":[3]}}}]}',
  '{"x":{"apps":[9]},"apps":[{"id":"/a"}],"y":[1,2]}',
  '{"apps":[]}',
  '{"apps":[1,"two",null]}',
  '{"apps": [ {"id": "/web", ',
  '{"apps":["abc',
  '{"apps":[]} x',
  '{"items":[1]}',
  '[{"apps":[]}]',
  '{"apps":[1,,2]}',
  JSON.stringify({ apps: Array.from({ length: 30 }, (_, i) => ({ id: `/app-${i}`, labels: { note: `a "quoted" \\ [value] {${i}}` }, tasks: [{ id: `t${i}`, ports: [i] }] })) }),
];

function streamed(text: string, sizes: () => number): { items: string[]; complete: boolean } {
  const stream = new ArrayItemStream('apps');
  const items: string[] = [];
  for (let i = 0; i < text.length; ) {
    const size = Math.max(1, sizes());
    items.push(...stream.push(text.slice(i, i + size)));
    i += size;
  }
  return { items, complete: stream.complete() };
}

describe('ArrayItemStream', () => {
  it.each(TEXTS.map((t, i) => [i, t] as const))('splits text %i like the whole-text scanner, whatever the chunks', (_i, text) => {
    const whole = topLevelArrayItems(text, 'apps');
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 1 + (seed % 9);
    };
    for (const sizes of [() => 1, () => 3, () => text.length, random]) {
      const result = streamed(text, sizes);
      expect(result.complete).toBe(whole !== null);
      if (whole !== null) expect(result.items).toEqual(whole);
    }
  });
});

describe('ListingParser', () => {
  it('gives what parsing the listing whole gives, and refuses a text that is not a listing', async () => {
    const { ListingParser, parseAppsListing } = await import('../../agent/core/marathon-apps.js');
    const text = TEXTS[TEXTS.length - 1] as string;
    const parser = new ListingParser();
    for (let i = 0; i < text.length; i += 7) parser.push(text.slice(i, i + 7));
    expect(parser.finish()).toEqual(parseAppsListing(text));
    for (const bad of ['{"apps": [ {"id": "/web", ', '{"message":"Internal error"}', '<html>']) {
      const refused = new ListingParser();
      refused.push(bad);
      expect(() => refused.finish()).toThrow('malformed JSON');
    }
  });
});

describe('ArrayItemStream against JSON.parse', () => {
  // Strings full of what the scanner must not take for structure: quotes, escapes, braces, brackets, commas.
  const PIECES = ['a', ' ', '{', '}', '[', ']', ',', ':', '\\', '"', '\\\\', '\\"', '\u00e9', '\u{1F600}', '\n'];
  function randomValue(next: () => number, depth: number): unknown {
    const roll = next() % (depth > 5 ? 4 : 7);
    if (roll === 0) return next() % 1000;
    if (roll === 1) return Array.from({ length: next() % 12 }, () => PIECES[next() % PIECES.length]).join('');
    if (roll === 2) return next() % 2 === 0 ? null : true;
    if (roll === 3) return -(next() % 50) / 4;
    if (roll === 4) return Array.from({ length: next() % 5 }, () => randomValue(next, depth + 1));
    return Object.fromEntries(Array.from({ length: next() % 6 }, (_, i) => [`${PIECES[next() % PIECES.length]}k${i}`, randomValue(next, depth + 1)]));
  }

  it('gives exactly the apps JSON.parse finds, for random apps in random pieces', () => {
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let round = 0; round < 200; round++) {
      const apps = Array.from({ length: next() % 6 }, () => randomValue(next, 2));
      // Sometimes an app with a long flat array of strings: longer than one run of the scanner's regex.
      if (round % 10 === 0) apps.push({ id: '/flat', args: Array.from({ length: 1000 }, (_, i) => `x"${i}\\`) });
      const text = JSON.stringify({ before: { apps: [1] }, apps, after: [PIECES] }, null, round % 3 === 0 ? 1 : undefined);
      const piece = 1 + (next() % 200);
      const result = streamed(text, () => piece);
      expect(result.complete).toBe(true);
      expect(result.items.map((item) => JSON.parse(item) as unknown)).toEqual((JSON.parse(text) as { apps: unknown[] }).apps);
    }
  });
});
