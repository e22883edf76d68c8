import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArrayItemStream } from '../../agent/core/listing-stream.js';
import { parseAppsListing, parseAppsResponse } from '../../agent/core/marathon-apps.js';

/** All items of `text` pushed at once, or null when it is not shaped so. */
function topLevelArrayItems(text: string, key: string): string[] | null {
  const stream = new ArrayItemStream(key);
  const items = stream.push(text);
  return stream.complete() ? items : null;
}


describe('topLevelArrayItems', () => {
  it.each([
    ['a plain listing', '{"apps":[{"id":"/a"},{"id":"/b"}]}', ['{"id":"/a"}', '{"id":"/b"}']],
    ['whitespace everywhere', ' {\n "apps" : [ {"id": "/a"} ,\n {"id":"/b"}\n ] \n} ', ['{"id": "/a"}', '{"id":"/b"}']],
    ['strings holding brackets, braces, commas and escaped quotes', '{"apps":[{"cmd":"echo \\"}],[{\\" , x"},{"id":"/b"}]}', ['{"cmd":"echo \\"}],[{\\" , x"}', '{"id":"/b"}']],
    ['nested arrays and objects', '{"apps":[{"ports":[1,2],"labels":{"a":{"b":[3]}}}]}', ['{"ports":[1,2],"labels":{"a":{"b":[3]}}}']],
    ['other keys around', '{"x":{"apps":[9]},"apps":[{"id":"/a"}],"y":[1,2]}', ['{"id":"/a"}']],
    ['an empty array', '{"apps":[]}', []],
    ['non-object items', '{"apps":[1,"two",null]}', ['1', '"two"', 'null']],
  ])('splits %s', (_title, text, items) => {
    expect(topLevelArrayItems(text, 'apps')).toEqual(items);
    for (const item of items) expect(() => JSON.parse(item)).not.toThrow();
  });

  it.each([
    ['truncated text', '{"apps": [ {"id": "/web", '],
    ['an unterminated string', '{"apps":["abc'],
    ['trailing garbage', '{"apps":[]} x'],
    ['no apps key', '{"items":[1]}'],
    ['a top-level array', '[{"apps":[]}]'],
    ['an empty element', '{"apps":[1,,2]}'],
  ])('returns null for %s', (_title, text) => {
    expect(topLevelArrayItems(text, 'apps')).toBeNull();
  });
});

describe('parseAppsListing', () => {
  it('gives the same snapshot as parsing the listing whole', () => {
    const text = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'apps', 'app_list.json'), 'utf8');
    const withTasks = JSON.stringify({ apps: [JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'marathon', 'apps', '4.2-app-show-embedded-tasks.json'), 'utf8')).app] });
    for (const listing of [text, withTasks]) expect(parseAppsListing(listing)).toEqual(parseAppsResponse(JSON.parse(listing)));
  });

  it('reports an app it cannot route and keeps the others', () => {
    const result = parseAppsListing('{"apps":[{"id":"/a"},{"id":"", "x": true},{"id":"/c"}]}');
    expect(result.snapshot.apps.map((a) => a.id)).toEqual(['/a', '/c']);
    expect(result.problems[0]?.message).toBe('app has no id');
  });

  // Found by fuzzing: a deleted "},{" merged /c into the broken /b, and /c lost its route.
  it.each([
    ['an app that is not JSON', '{"apps":[{"id":"/a"},{"id":"/b", "x": tru},{"id":"/c"}]}'],
    ['two apps merged by a lost "},{"', '{"apps":[{"id":"/a"},{"id":"/b", "x": 1"id":"/c"}]}'],
  ])('refuses the whole listing for %s, so its neighbours keep their routes', (_title, text) => {
    expect(() => parseAppsListing(text)).toThrow(/^Marathon answered malformed JSON.*an app in the listing is not valid JSON/);
  });

  it('throws on text that is not JSON at all', () => {
    expect(() => parseAppsListing('{"apps": [ {"id": "/web", ')).toThrow('Marathon answered malformed JSON');
  });
});
