// The CLI's policy check against the plugin's: found by fuzzing both with the
// same policies (test/fuzz, target "policies"), each case was decided
// differently on the two sides, or took the CLI far too long.
import { describe, expect, it } from 'vitest';
import { checkPolicyText, MAX_POLICY_BYTES } from '../../agent/policy/policy-check.js';
import { pcreToJavaScript } from '../../agent/policy/pcre-compat.js';

const withIp = (cidr: string) => JSON.stringify({ rules: [{ match: { ip: [cidr] }, version: 'grey' }] });
const withPattern = (pattern: string) => JSON.stringify({ rules: [{ match: { device: { pattern } }, version: 'grey' }] });

describe('checkPolicyText', () => {
  it('refuses text over 1 MiB, as the plugin does, even when it is otherwise valid', () => {
    const rules = Array.from({ length: 256 }, (_, i) => ({ match: { header: { name: 'X-A', values: ['v'.repeat(4096)] } }, version: `v${i}` }));
    expect(checkPolicyText(JSON.stringify({ rules }))).toEqual({ ok: false, errors: [`/: larger than ${MAX_POLICY_BYTES} bytes`] });
  });

  it('refuses a lone surrogate, which has no UTF-8 form (the plugin cannot read it)', () => {
    expect(checkPolicyText('{"seed": "\\ud800"}').ok).toBe(false);
    expect(checkPolicyText('{"seed": "\\ud800", "seed": "overwritten"}').ok).toBe(false);
    expect(checkPolicyText('{"seed": "\\ud83d\\ude00"}').ok).toBe(true);
    expect(checkPolicyText('{"seed": "\\\\ud800"}').ok).toBe(true);
  });

  it('refuses a CIDR with an IPv6 zone, and a prefix of more than three digits', () => {
    expect(checkPolicyText(withIp('fe80::1%eth0')).ok).toBe(false);
    expect(checkPolicyText(withIp('10.0.0.0/0032')).ok).toBe(false);
    expect(checkPolicyText(withIp('10.0.0.0/032')).ok).toBe(true);
  });

  it('answers at once for 65,536 bad rules (it took 10 s) and for 87,000 bad items (100 s)', () => {
    const started = Date.now();
    expect(checkPolicyText(JSON.stringify({ rules: Array.from({ length: 65_536 }, () => 'x') }))).toEqual({ ok: false, errors: ['/rules: must NOT have more than 256 items'] });
    const items = checkPolicyText(JSON.stringify({ rules: [{ match: { device: { values: Array.from({ length: 87_000 }, (_, i) => i) } }, version: 'g' }] }));
    expect(items.ok === false && items.errors.length).toBe(10);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it.each([
    ['a++b', true],
    ['(?>a+)b', true],
    ['(?#comment)a', true],
    ['(?P<n>a)(?P=n)', true],
    ['(*LIMIT_MATCH=10)a', true],
    ['\\Q.*\\E', true],
    ['\\u0041', false],
    ['('.repeat(251) + ')'.repeat(251), false],
    ['('.repeat(250) + ')'.repeat(250), true],
    ['[', false],
    ['(?i:a)b', true],
    ['a(?-i)b', true],
    ['x{99999}', false],
    ['\\x{263a}', false],
    ['\\x{41}', true],
    ['(?<=a+)b', false],
    ['(?<=ab|c)d', true],
  ])('judges the pattern %s as PCRE does (valid: %s)', (pattern, valid) => {
    expect(checkPolicyText(withPattern(pattern)).ok).toBe(valid);
  });

  // Each checked against libpcre.so.3 (PCRE 8), which the plugin's ngx.re links.
  it.each([
    ['(?<=a(b|cd))x', false],
    ['(?<=a(b|c))x', true],
    ['(?<=a(?:bc|de){2})x', true],
    ['(?<=\\d{3})x', true],
    ['(?<=\\1)(a)', false],
    ['(?<=(?=abc)ab)x', true],
    ['(?<=a(?=b*))x', true],
    ['(?<=a\\b)x', true],
    ['(?<=\\R)x', false],
    ['(?<=\\X)x', false],
    ['(?<=[abc]\\x41\\x{41})x', true],
    ['(?<=[[:alpha:]]|ab)x', true],
    ['(?<=([[:alpha:]]|ab))x', false],
    ['(?<=([[:alpha:]]b|ab))x', true],
    ['(?<=a{2,})x', false],
    ['(?<=(?i:ab|c))x', false],
    ['(?<=x(?i:ab|cd))x', true],
    ['(?<=\\pL\\p{Lu})x', true],
    ['(?<=(?P<n>a|b)c)x', true],
    ["(?<=(?'n'a|bc))x", false],
    ['(?<=(?>a|bc))x', false],
    ['(?<=a(?<=c|de))x', true],
    ['(?<=(?i)ab)x', true],
    ['(?<=a(?#c)b)x', true],
    ['(?<=\\Qab\\E)x', true],
    ['(?<=(a|bc)|d)x', false],
    ['(?<=a{2}+)x', true],
    ['(?<=a{2,2})x', true],
    ['(?<=a{2,3})x', false],
    ['(?<=a{,2})x', true],
    ['(?<=(?<n>ab))x', true],
    ['(?<=\\k<n>)(?<n>a)', false],
    ['(?<=ab(?<!cd|e))x', true],
    ['(?<=a|(?:b|cd))x', false],
    ['(?<=a{3}?)x', true],
    ['(?<=\\cA\\011\\0)x', true],
  ])('measures the lookbehind in %s as PCRE does (valid: %s)', (pattern, valid) => {
    expect(checkPolicyText(withPattern(pattern)).ok).toBe(valid);
  });
});

describe('pcreToJavaScript', () => {
  it('leaves character classes and escapes alone', () => {
    expect(pcreToJavaScript('[a++]\\++x')).toEqual({ ok: true, source: '[a++]\\++x' });
    expect(pcreToJavaScript('[]a](?>b)')).toEqual({ ok: true, source: '[\\]a](?:b)' });
  });
});
