// The CLI's policy check must accept exactly the lookbehinds the plugin's
// PCRE compiles. Random lookbehinds (groups of every kind, assertions,
// escapes, quantifiers) are judged by both: the CLI's check in process, and
// libpcre.so.3 itself through LuaJIT's FFI (test/pcre/compiles.lua).
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { checkPolicyText } from '../../agent/policy/policy-check.js';
import { Rng } from '../fuzz/prng.js';

const CASES = 4_000;
const SEED = Number(process.env.EDGEROUTE_FUZZ_SEED ?? 20261122);

const ATOMS = ['a', 'bc', '.', '\\d', '\\pL', '[xy]', '[[:digit:]]', '\\x41', '\\x{42}', '\\Qzz\\E', '\\b', '^', '(?i)', '(?#c)', '(?=q+)', '(?!r)', '\\R', '\\X', '\\1', '\\k<n>'];
const GROUPS = ['(', '(?:', '(?>', '(?i:', '(?<n>', '(?<=', '(?<!'];
const REPEATS = ['', '', '', '', '{2}', '{1,2}', '{2,}', '{,2}', '*', '+', '?', '{2}?', '{2}+'];

function branch(rng: Rng, depth: number): string {
  let out = '';
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const atom = depth > 0 && rng.chance(0.35) ? `${rng.pick(GROUPS)}${alternatives(rng, depth - 1)})` : rng.pick(ATOMS);
    out += atom + rng.pick(REPEATS);
  }
  return out;
}

function alternatives(rng: Rng, depth: number): string {
  return Array.from({ length: 1 + rng.int(3) }, () => branch(rng, depth)).join('|');
}

const cliAccepts = (pattern: string) => checkPolicyText(JSON.stringify({ rules: [{ match: { device: { pattern } }, version: 'grey' }] })).ok;

describe('lookbehinds', () => {
  it(`are judged alike by the CLI and by PCRE (${CASES} random patterns, seed ${SEED})`, async () => {
    const patterns = Array.from({ length: CASES }, (_, i) => `(?<n>a)(?<=${alternatives(Rng.forCase(SEED, 'lookbehind', i), 2)})x`);
    const { stdout } = await execa('luajit', ['test/pcre/compiles.lua'], { input: `${patterns.join('\n')}\n` });
    const verdicts = stdout.split('\n');
    expect(verdicts).toHaveLength(CASES);
    const disagreements = patterns
      .map((pattern, i) => ({ pattern, pcre: verdicts[i]!, cli: cliAccepts(pattern) }))
      .filter(({ pcre, cli }) => (pcre === 'OK') !== cli);
    expect(disagreements.slice(0, 5)).toEqual([]);
    // Both outcomes must be common, or the comparison shows little.
    const accepted = verdicts.filter((v) => v === 'OK').length;
    expect(accepted).toBeGreaterThan(CASES / 20);
    expect(CASES - accepted).toBeGreaterThan(CASES / 20);
  });
});
