/**
 * Finds the elements of one top-level array in a JSON text without parsing
 * the whole document, so a 50 MB Marathon listing can be parsed one app at a
 * time instead of as one tree of a hundred thousand tasks.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

/**
 * The text of each element of the array under `key` in the top-level
 * object, e.g. `{"apps": [...]}`. Null when the text is not shaped so or is
 * not well nested (the caller then parses it whole, for a proper error).
 */
export function topLevelArrayItems(text: string, key: string): string[] | null {
  const length = text.length;
  let i = 0;
  while (i < length && isSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== OPEN_BRACE) return null;
  let depth = 0;
  let items: string[] | null = null;
  let capturing = false;
  let itemStart = -1;
  let lastKeyAtTop: string | null = null;
  for (; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      const start = i;
      for (i++; i < length; i++) {
        const c = text.charCodeAt(i);
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) break;
      }
      if (i >= length) return null;
      if (depth === 1) lastKeyAtTop = text.slice(start + 1, i);
      if (capturing && depth === 2 && itemStart < 0) itemStart = start;
      continue;
    }
    if (isSpace(code)) continue;
    if (capturing && depth === 2 && itemStart < 0 && code !== COMMA && code !== CLOSE_BRACKET) itemStart = i;
    if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (code === OPEN_BRACKET && depth === 1 && lastKeyAtTop === key && items === null) {
        items = [];
        capturing = true;
      }
      depth++;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      if (capturing && depth === 2 && code === CLOSE_BRACKET) {
        if (itemStart >= 0) items?.push(text.slice(itemStart, i).trimEnd());
        itemStart = -1;
        capturing = false;
      }
      depth--;
      if (depth < 0) return null;
      if (depth === 0) {
        for (i++; i < length; i++) if (!isSpace(text.charCodeAt(i))) return null;
        return items;
      }
    } else if (code === COMMA) {
      if (capturing && depth === 2) {
        if (itemStart < 0) return null;
        items?.push(text.slice(itemStart, i).trimEnd());
        itemStart = -1;
      }
      if (depth === 1) lastKeyAtTop = null;
    } else if (code === COLON && depth === 1) {
      // the value of lastKeyAtTop follows
    }
  }
  return null;
}
