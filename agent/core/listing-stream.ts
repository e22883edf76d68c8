/**
 * Splits `{"apps": [ ... ]}` into the text of each app as the text arrives,
 * chunk by chunk, so a 50 MB Marathon listing is never held whole: only the
 * app being read. It follows JSON strings, escapes and nesting, and keeps its
 * state between chunks.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

export class ArrayItemStream {
  private buffer = '';
  private position = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private stringStart = -1;
  private lastKeyAtTop: string | null = null;
  private capturing = false;
  private found = false;
  private done = false;
  private itemStart = -1;
  private broken = false;

  constructor(private readonly key: string) {}

  /** Adds text; returns the items completed by it. */
  push(text: string): string[] {
    if (this.broken) return [];
    this.buffer += text;
    const items: string[] = [];
    const buffer = this.buffer;
    let i = this.position;
    for (; i < buffer.length; i++) {
      const code = buffer.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (code === BACKSLASH) this.escaped = true;
        else if (code === QUOTE) {
          this.inString = false;
          if (this.depth === 1) this.lastKeyAtTop = buffer.slice(this.stringStart + 1, i);
        }
        continue;
      }
      if (this.done) {
        if (!isSpace(code)) this.broken = true;
        continue;
      }
      if (code === QUOTE) {
        this.inString = true;
        this.stringStart = i;
        if (this.capturing && this.depth === 2 && this.itemStart < 0) this.itemStart = i;
        continue;
      }
      if (isSpace(code)) continue;
      if (this.depth === 0 && code !== OPEN_BRACE) {
        this.broken = true;
        break;
      }
      if (this.capturing && this.depth === 2 && this.itemStart < 0 && code !== COMMA && code !== CLOSE_BRACKET) this.itemStart = i;
      if (code === OPEN_BRACE || code === OPEN_BRACKET) {
        if (code === OPEN_BRACKET && this.depth === 1 && this.lastKeyAtTop === this.key && !this.found) {
          this.found = true;
          this.capturing = true;
        }
        this.depth++;
      } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
        if (this.capturing && this.depth === 2 && code === CLOSE_BRACKET) {
          if (this.itemStart >= 0) items.push(buffer.slice(this.itemStart, i).trimEnd());
          this.itemStart = -1;
          this.capturing = false;
        }
        this.depth--;
        if (this.depth < 0) this.broken = true;
        if (this.depth === 0) this.done = true;
      } else if (code === COMMA) {
        if (this.capturing && this.depth === 2) {
          if (this.itemStart < 0) this.broken = true;
          else items.push(buffer.slice(this.itemStart, i).trimEnd());
          this.itemStart = -1;
        }
        if (this.depth === 1) this.lastKeyAtTop = null;
      }
    }
    // Keep only what an unfinished item or string still needs.
    const keepFrom = Math.min(...[this.itemStart, this.inString ? this.stringStart : -1, i].filter((n) => n >= 0));
    this.buffer = buffer.slice(keepFrom);
    this.position = i - keepFrom;
    if (this.itemStart >= 0) this.itemStart -= keepFrom;
    if (this.stringStart >= 0) this.stringStart -= keepFrom;
    return items;
  }

  /** True when the whole text was one object holding the array, well nested. */
  complete(): boolean {
    return !this.broken && this.done && this.found && !this.inString;
  }
}
