/**
 * Finds the elements of one top-level array in a JSON text without parsing
 * the whole document: the text of each element of the array under `key` in
 * the top-level object, e.g. `{"apps": [...]}`. Null when the text is not
 * shaped so or is not well nested.
 */
import { ArrayItemStream } from './listing-stream.js';

export function topLevelArrayItems(text: string, key: string): string[] | null {
  const stream = new ArrayItemStream(key);
  const items = stream.push(text);
  return stream.complete() ? items : null;
}
