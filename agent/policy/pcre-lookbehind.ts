/**
 * PCRE 8 (the library the plugin's ngx.re links) compiles a lookbehind only
 * when each of its top-level branches matches strings of one fixed length,
 * and every group inside a branch has branches of one length: (?<=ab|c) is
 * taken, (?<=a(b|cd)) is refused. JavaScript takes both, so the CLI measures
 * the branches itself. The cases below were checked against libpcre.so.3.
 */

/** Whether the lookbehind whose body is `body` (between "(?<=" and its ")") compiles in PCRE 8. */
export function lookbehindIsFixedLength(body: string): boolean {
  return branches(body).every((branch) => fixedLength(branch) !== null);
}

/** Index of the ")" closing the group opened at `open`, or -1. */
export function groupEnd(source: string, open: number): number {
  let depth = 0;
  for (let i = open; i < source.length; i = tokenEnd(source, i)) {
    const c = source[i];
    if (c === '(') {
      if (source.startsWith('(?#', i)) {
        // A comment ends at the first ")", whatever it holds.
        const end = source.indexOf(')', i);
        if (end < 0 || depth === 0) return end;
        i = end;
        continue;
      }
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Index after the token at `i`: an escape (\Q...\E whole), a character class, or one character. */
export function tokenEnd(source: string, i: number): number {
  const c = source[i];
  if (c === '\\') {
    if (source[i + 1] === 'Q') {
      const end = source.indexOf('\\E', i + 2);
      return end < 0 ? source.length : end + 2;
    }
    return i + 2;
  }
  if (c === '[') return classEnd(source, i);
  return i + 1;
}

function classEnd(source: string, open: number): number {
  let i = open + 1;
  if (source[i] === '^') i++;
  if (source[i] === ']') i++;
  while (i < source.length && source[i] !== ']') {
    if (source[i] === '\\') i += 2;
    else if (source[i] === '[' && source[i + 1] === ':' && source.indexOf(':]', i + 2) >= 0) i = source.indexOf(':]', i + 2) + 2;
    else i++;
  }
  return i + 1;
}

/** The top-level alternatives of `body`. */
function branches(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i = tokenEnd(body, i)) {
    const c = body[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out;
}

/** The one length every string `branch` matches has, or null when there is none. */
function fixedLength(branch: string): number | null {
  let total = 0;
  for (let i = 0; i < branch.length; ) {
    const atom = readAtom(branch, i);
    i = skipComments(branch, atom.end);
    const repeat = readRepeat(branch, i);
    if (repeat === null) {
      if (atom.length === null) return null;
      total += atom.length + atom.unrepeated;
      continue;
    }
    i = repeat.end;
    // Lazy and possessive forms match the same lengths.
    if (branch[i] === '?' || branch[i] === '+') i++;
    const length = repeatedLength(atom, repeat);
    if (length === null) return null;
    total += length;
  }
  return total;
}

function repeatedLength(atom: Atom, repeat: Repeat): number | null {
  // PCRE 8 quirk: \R{n} and \X{n} pass as fixed for n of 2 or more.
  if (atom.quirk && repeat.min === repeat.max && repeat.min >= 2) return repeat.min;
  if (atom.length === null) return null;
  // A repeated assertion is kept at most once, and dropped when it may be.
  if (atom.assertion) return repeat.min === 0 && repeat.max > 0 ? null : 0;
  if (repeat.min !== repeat.max) return null;
  return atom.unrepeated + atom.length * repeat.min;
}

function skipComments(branch: string, i: number): number {
  while (branch.startsWith('(?#', i)) {
    const end = branch.indexOf(')', i);
    if (end < 0) return branch.length;
    i = end + 1;
  }
  return i;
}

interface Atom {
  /** What the atom matches, and what a quantifier after it repeats. */
  readonly length: number | null;
  /** Characters before it a quantifier does not repeat (all but the last of \\Q...\\E). */
  readonly unrepeated: number;
  readonly end: number;
  readonly quirk?: boolean;
  readonly assertion?: boolean;
}

const ZERO_WIDTH_ESCAPES = 'bBAzZGKE';
/** Back-references, \R (one or two characters) and \X (a whole grapheme): no fixed length. */
const VARIABLE_ESCAPES = '123456789kg';

const sized = (length: number | null, end: number): Atom => ({ length, unrepeated: 0, end });

function readAtom(branch: string, i: number): Atom {
  const c = branch[i]!;
  if (c === '\\') return readEscape(branch, i);
  if (c === '[') return sized(1, classEnd(branch, i));
  if (c === '(') return readGroup(branch, i);
  if (c === '^' || c === '$') return sized(0, i + 1);
  // A quantifier with nothing to repeat.
  if (c === '*' || c === '+' || c === '?') return sized(null, i + 1);
  return sized(1, i + 1);
}

function readEscape(branch: string, i: number): Atom {
  const kind = branch[i + 1];
  if (kind === undefined) return sized(null, i + 1);
  if (kind === 'Q') {
    const end = branch.indexOf('\\E', i + 2);
    const literal = branch.slice(i + 2, end < 0 ? branch.length : end);
    const end2 = end < 0 ? branch.length : end + 2;
    return literal.length === 0 ? sized(0, end2) : { length: 1, unrepeated: literal.length - 1, end: end2 };
  }
  if (ZERO_WIDTH_ESCAPES.includes(kind)) return sized(0, i + 2);
  if (VARIABLE_ESCAPES.includes(kind)) return sized(null, i + 2);
  if (kind === 'R' || kind === 'X') return { length: null, unrepeated: 0, end: i + 2, quirk: true };
  if ('xopP'.includes(kind) && branch[i + 2] === '{') {
    const close = branch.indexOf('}', i + 2);
    return sized(1, close < 0 ? branch.length : close + 1);
  }
  if (kind === 'x') return sized(1, i + 2 + (/^[0-9a-fA-F]{0,2}/.exec(branch.slice(i + 2))?.[0].length ?? 0));
  if (kind === '0') return sized(1, i + 2 + (/^[0-7]{0,2}/.exec(branch.slice(i + 2))?.[0].length ?? 0));
  if (kind === 'c' || kind === 'p' || kind === 'P') return sized(1, i + 3);
  return sized(1, i + 2);
}

function readGroup(branch: string, open: number): Atom {
  const close = groupEnd(branch, open);
  if (close < 0) return sized(null, branch.length);
  const end = close + 1;
  const head = branch.slice(open, close + 1);
  // Assertions, comments, option settings and verbs match no characters.
  if (/^\((\?=|\?!|\?<=|\?<!)/.test(head)) return { length: 0, unrepeated: 0, end, assertion: true };
  if (/^\((\?#|\*)/.test(head) || /^\(\?[imsxJUX-]*\)$/.test(head)) return sized(0, end);
  const body =
    /^\(\?(?:[imsxJUX-]*:|>|\||P?<[A-Za-z_]\w*>|'[A-Za-z_]\w*')/.exec(head)?.[0] ?? (head.startsWith('(?') ? null : '(');
  // Recursion, subroutine calls and conditionals.
  if (body === null) return sized(null, end);
  const lengths = branches(branch.slice(open + body.length, close)).map(fixedLength);
  const first = lengths[0] ?? null;
  return sized(first !== null && lengths.every((length) => length === first) ? first : null, end);
}

interface Repeat {
  readonly min: number;
  readonly max: number;
  readonly end: number;
}

function readRepeat(branch: string, i: number): Repeat | null {
  const c = branch[i];
  if (c === '*') return { min: 0, max: Infinity, end: i + 1 };
  if (c === '+') return { min: 1, max: Infinity, end: i + 1 };
  if (c === '?') return { min: 0, max: 1, end: i + 1 };
  // PCRE 8 reads {,n} and other forms as literal text.
  const counted = c === '{' ? /^\{(\d+)(,(\d*))?\}/.exec(branch.slice(i)) : null;
  if (!counted) return null;
  const min = Number(counted[1]);
  const max = counted[2] === undefined ? min : counted[3] === '' ? Infinity : Number(counted[3]);
  return { min, max, end: i + counted[0].length };
}
