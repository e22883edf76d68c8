/**
 * Marathon's listing `{"apps":[...]}` as parsed apps, a batch of them per
 * JSON.parse, as the text arrives. Marathon writes it compact, each app
 * starting with its id, and an app id always starts with "/": so `},{"id":"/`
 * is where one app ends and the next begins, nearly always. The text up to
 * the last such place is parsed as one array; that the parse succeeds proves
 * the guess (a batch that starts at an app and parses as a list of values
 * ends at an app, wherever the marker was found). When it does not hold
 * (a task or another object inside an app starts the same way, a listing
 * written otherwise, a damaged text), the rest of the listing goes through
 * ArrayItemStream, which follows every string and bracket, an app at a time.
 *
 * Why: following every string of a 50 MB listing cost as much CPU as parsing
 * it (125-150 ms of a 0.55 s read at 10,000 apps, 250 ms of 0.75 s with
 * health results); finding the marker costs a few milliseconds.
 */
import { ArrayItemStream } from './listing-stream.js';

const START = /^\s*\{"apps":\[/;
const BOUNDARY = '},{"id":"/';
/** Text held without finding the marker before giving up on it: a listing written otherwise. */
const MAX_PENDING = 4 * 1024 * 1024;

export class ListingBatches {
  /** Fast mode: the text from the start of the next app. */
  private pending = '';
  private mode: 'start' | 'fast' | 'careful' = 'start';
  private careful: ArrayItemStream | null = null;
  private malformed: string | null = null;

  /**
   * Adds text; returns the apps it completed, parsed. An app that is not
   * JSON stops the parsing (see `malformedApp`).
   */
  push(text: string): unknown[] {
    if (this.malformed !== null) return [];
    if (this.mode === 'careful') return this.parseEach((this.careful as ArrayItemStream).push(text));
    // Only the new text (and the end of the old) can hold a marker: the old text held none.
    let searchFrom = Math.max(0, this.pending.length - BOUNDARY.length + 1);
    this.pending = this.pending === '' ? text : this.pending + text;
    if (this.mode === 'start') {
      const start = START.exec(this.pending);
      // Too short to tell yet.
      if (start === null && this.pending.length < 64) return [];
      if (start === null) return this.goCareful('');
      this.mode = 'fast';
      this.pending = this.pending.slice(start[0].length);
      searchFrom = 0;
    }
    const end = this.pending.indexOf(BOUNDARY, searchFrom) < 0 ? -1 : this.pending.lastIndexOf(BOUNDARY);
    if (end < 0) return this.pending.length > MAX_PENDING ? this.goCareful('{"apps":[') : [];
    let apps: unknown;
    try {
      apps = JSON.parse(`[${this.pending.slice(0, end + 1)}]`);
    } catch {
      return this.goCareful('{"apps":[');
    }
    this.pending = this.pending.slice(end + 2);
    return apps as unknown[];
  }

  /** The text is all there: returns the apps its end completed (the last app is read the careful way). */
  end(): unknown[] {
    if (this.malformed !== null || this.mode === 'careful') return [];
    return this.goCareful(this.mode === 'fast' ? '{"apps":[' : '');
  }

  /** After end(): true when the whole text was one object holding the array, well nested. */
  complete(): boolean {
    return this.careful !== null && this.careful.complete();
  }

  /** Whether the rest of the text goes the careful way (ArrayItemStream), the marker having failed. */
  get isCareful(): boolean {
    return this.mode === 'careful';
  }

  /** The JSON.parse error of the first app that is not JSON; null when all were. */
  get malformedApp(): string | null {
    return this.malformed;
  }

  /** The careful way from here on: `prefix` puts ArrayItemStream where fast mode was (inside the array). */
  private goCareful(prefix: string): unknown[] {
    const careful = new ArrayItemStream('apps');
    this.careful = careful;
    this.mode = 'careful';
    const text = prefix + this.pending;
    this.pending = '';
    return this.parseEach(careful.push(text));
  }

  private parseEach(items: readonly string[]): unknown[] {
    const apps: unknown[] = [];
    for (const item of items) {
      try {
        apps.push(JSON.parse(item));
      } catch (err) {
        this.malformed = (err as Error).message.slice(0, 200);
        break;
      }
    }
    return apps;
  }
}
