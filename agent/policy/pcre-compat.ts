/**
 * The plugin compiles policy patterns with PCRE; the CLI can only ask
 * JavaScript's engine. This closes the gaps the policy fuzzer found, so
 * that both refuse and accept the same patterns as often as a translation
 * can manage: PCRE-only syntax (possessive quantifiers, atomic groups,
 * comments, Python-style names, leading verbs such as (*LIMIT_MATCH=N),
 * option settings such as (?i:...) and (?-i)) is rewritten into its
 * JavaScript equivalent before compiling, and what PCRE refuses but
 * JavaScript takes (\u escapes, more than 250 nested groups, quantifiers
 * over 65535, \x{...} past 0xff, a lookbehind that is not fixed-length
 * (pcre-lookbehind.ts), \1 with no group 1, which JavaScript reads as an
 * octal escape) is refused here too.
 */

import { groupEnd, lookbehindIsFixedLength, tokenEnd } from './pcre-lookbehind.js';

/** PCRE's limit on nested parentheses (PARENS_NEST_LIMIT). */
const MAX_NESTED_GROUPS = 250;
/** PCRE's largest repeat count in {n,m}. */
const MAX_REPEAT = 65_535;
/** Without UTF mode (the plugin's "jo"), \x{...} names one byte. */
const MAX_HEX_ESCAPE = 0xff;

export type Translation = { ok: true; source: string } | { ok: false; message: string };

export function pcreToJavaScript(pattern: string): Translation {
  let source = pattern;
  // Verbs such as (*UTF) or (*LIMIT_MATCH=10) may only open the pattern.
  for (let verb = /^\(\*[A-Z_]+(=\d+)?\)/.exec(source); verb; verb = /^\(\*[A-Z_]+(=\d+)?\)/.exec(source)) source = source.slice(verb[0].length);
  const groups = capturingGroups(source);
  let out = '';
  let depth = 0;
  let inClass = false;
  const wrappedLookbehindEnds = new Set<number>();
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined) return { ok: false, message: '\\ at end of pattern' };
      if (!inClass && next >= '1' && next <= '9' && !/[0-9]/.test(source[i + 2] ?? '') && Number(next) > groups) {
        return { ok: false, message: `reference to non-existent subpattern \\${next}` };
      }
      if (!inClass && 'LlUu'.includes(next)) return { ok: false, message: `PCRE does not support \\${next}` };
      if (!inClass && next === 'N' && source[i + 2] === '{') return { ok: false, message: 'PCRE does not support \\N{name}' };
      if (next === 'x' && source[i + 2] === '{') {
        const hex = /^\\x\{([0-9a-fA-F]+)\}/.exec(source.slice(i));
        if (!hex) return { ok: false, message: 'bad \\x{...} escape' };
        const code = Number.parseInt(hex[1]!, 16);
        if (code > MAX_HEX_ESCAPE) return { ok: false, message: `\\x{${hex[1]}} is past 0xff (PCRE runs without UTF)` };
        out += `\\x${code.toString(16).padStart(2, '0')}`;
        i += hex[0].length - 1;
        continue;
      }
      if (!inClass && next === 'Q') {
        // \Q...\E quotes literally.
        const end = source.indexOf('\\E', i + 2);
        const literal = source.slice(i + 2, end < 0 ? source.length : end);
        out += literal.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end < 0 ? source.length : end + 1;
        continue;
      }
      out += c + next;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A ] right after [ or [^ is a literal.
      if (source[i + 1] === '^') out += source[++i];
      if (source[i + 1] === ']') out += `\\${source[++i]}`;
      continue;
    }
    if (c === '(') {
      depth++;
      if (depth > MAX_NESTED_GROUPS) return { ok: false, message: `parentheses are nested deeper than ${MAX_NESTED_GROUPS}` };
      const rest = source.slice(i);
      if (rest.startsWith('(?#')) {
        const end = source.indexOf(')', i);
        if (end < 0) return { ok: false, message: 'missing ) after (?# comment' };
        i = end;
        depth--;
        continue;
      }
      // Option settings: a group's own ((?i:...)) becomes a plain group, a bare one ((?-i)) goes;
      // flags change what matches, not whether the pattern compiles.
      const options = /^\(\?[imsxJUX]*(-[imsxJUX]*)?([:)])/.exec(rest);
      // A leading (?i) stays: checkRegex reads it as JavaScript flags.
      const leadingFlags = i === 0 && /^\(\?[imsx]+\)$/.test(options?.[0] ?? '');
      if (options && options[0] !== '(?:' && options[0] !== '(?)' && !leadingFlags) {
        if (options[2] === ':') out += '(?:';
        else depth--;
        i += options[0].length - 1;
        if (options[2] === ')' && /^(\(\?#[^)]*\))*([*+?]|\{\d+(,\d*)?\})/.test(source.slice(i + 1))) return { ok: false, message: 'nothing to repeat' };
        continue;
      }
      if (rest.startsWith('(?<=') || rest.startsWith('(?<!')) {
        const end = groupEnd(source, i);
        if (end >= 0 && !lookbehindIsFixedLength(source.slice(i + 4, end))) return { ok: false, message: 'lookbehind assertion is not fixed length' };
        // PCRE lets a quantifier follow a lookbehind, JavaScript only a group.
        wrappedLookbehindEnds.add(end);
        out += `(?:${rest.slice(0, 4)}`;
        i += 3;
        continue;
      }
      if (rest.startsWith('(?>')) {
        out += '(?:';
        i += 2;
        continue;
      }
      if (rest.startsWith('(?P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      const backReference = /^\(\?P=(\w+)\)/.exec(rest);
      if (backReference) {
        out += `\\k<${backReference[1]}>`;
        i += backReference[0].length - 1;
        depth--;
        continue;
      }
      out += c;
      continue;
    }
    if (c === ')') {
      depth--;
      if (wrappedLookbehindEnds.has(i)) {
        out += '))';
        continue;
      }
    }
    if (c === '{') {
      const repeat = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
      if (repeat && (Number(repeat[1]) > MAX_REPEAT || Number(repeat[3] || 0) > MAX_REPEAT)) return { ok: false, message: `number too big in {} quantifier (PCRE allows ${MAX_REPEAT})` };
    }
    // Possessive quantifiers (a++, a*+, a?+, a{2}+) match what the greedy ones match.
    if (c === '+' && i > 0 && '+*?}'.includes(source[i - 1]!) && !isQuantifierEscaped(source, i - 1)) continue;
    out += c;
  }
  return { ok: true, source: out };
}

/** Capturing groups in the whole pattern (PCRE checks back-references against them once compiled). */
function capturingGroups(source: string): number {
  let count = 0;
  for (let i = 0; i < source.length; i = tokenEnd(source, i)) {
    if (source[i] === '(' && (source[i + 1] !== '?' || /^\(\?(P?<[A-Za-z_]|')/.test(source.slice(i, i + 5)))) count++;
  }
  return count;
}

/** Whether the character at `at` is escaped (an odd number of backslashes before it). */
function isQuantifierEscaped(source: string, at: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; i >= 0 && source[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 1;
}
