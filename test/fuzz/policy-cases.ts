/**
 * Fuzzed split policies: valid ones, valid ones with one field set to an
 * edge value (bad CIDRs, bad and catastrophic regexes, lengths counted in
 * bytes or characters, arrays at and past their limits), generic JSON
 * mutations, and text that strict and lenient JSON parsers disagree on.
 */
import { arrayNode, deepNesting, field, isArrayNode, isObjectNode, mutateDocument, objectNode, raw, render, setField, type JsonObjectNode, type JsonTree } from './json-tree.js';
import type { Rng } from './prng.js';

export interface PolicyCase {
  readonly text: string;
  readonly notes: readonly string[];
}

export const BAD_CIDRS: readonly string[] = [
  '10.0.0.0/33',
  '::ffff:1.2.3.4/200',
  '2001:db8::/129',
  '10.0.0/8',
  '256.0.0.1',
  '10.0.0.0/',
  '/8',
  '10.0.0.0/8/8',
  '010.0.0.1',
  ' 10.0.0.1',
  '10.0.0.1 ',
  '1.2.3.4/-1',
  '1.2.3.4/+8',
  '10.0.0.0/0032',
  'fe80::1%eth0',
  'fe80::1%eth0/64',
  '1::2::3',
  '1:2:3:4:5:6:7:8:9',
  ':::1',
  '1.2.3.4.5',
  '\uff11.\uff12.\uff13.\uff14',
  '0x7f.0.0.1',
  '127.1',
  'localhost',
  '',
  'a'.repeat(65),
];

export const GOOD_CIDRS: readonly string[] = [
  '10.0.0.0/8',
  '0.0.0.0/0',
  '127.0.0.1',
  '10.0.0.0/032',
  '::/0',
  '::1/128',
  '::ffff:1.2.3.4',
  '::ffff:1.2.3.4/128',
  '2001:db8::/32',
  '1:2:3:4:5:6:7::',
  '::1:2:3:4:5:6:7',
  '1::2:3:4:5:6:7',
  '2001:DB8::1',
];

/** Patterns that do not compile somewhere, or compile and then backtrack forever on the wrong subject. */
export const EDGE_PATTERNS: readonly string[] = [
  '(a+)+$',
  '(a|aa)+$',
  '(a|a?)+$',
  '(.*a){20}',
  '^(\\w+\\s?)*$',
  '(x+x+)+y',
  '[',
  '(',
  ')',
  '*',
  'a{2,1}',
  '[z-a]',
  '\\',
  '(?<=a+)b',
  '(?<=ab|c)d',
  '(?<!a{2,3})b',
  '(?<=(a|bc))d',
  'a++b',
  '(?>a+)b',
  '(?i)iphone',
  '(?x) i p h o n e',
  '(?i:a)b',
  '(?-i)a',
  '\\p{L}+',
  '\\Q.*\\E',
  '(?P<n>a)(?P=n)',
  '(?<n>a)\\k<n>',
  '[[:alpha:]]+',
  '\\x{263a}',
  'x{99999}',
  'a{,5}',
  '\\1',
  '(a)\\2',
  '(?#comment)a',
  '\\cA',
  '\\u0041',
  '(*LIMIT_MATCH=10)a',
  '(*CR)a',
  '(?R)?',
  '(?(1)a|b)',
  '\\R\\X\\h',
  '^MI \\d',
  '.',
  'x'.repeat(1024),
  'x'.repeat(1025),
  '('.repeat(250) + ')'.repeat(250),
  '('.repeat(251) + ')'.repeat(251),
  '('.repeat(300) + ')'.repeat(300),
  '(a)'.repeat(200),
];

const TOKENS = ['X-Fuzz-Mark', 'X-Device-Model', 'uid', 'grey', 'ab', 'User-Agent', 'x', 'A!#$%&\'*+.^_`|~-9'];

function valueTest(rng: Rng): Array<[string, JsonTree]> {
  return rng.weighted<() => Array<[string, JsonTree]>>([
    [2, () => [['values', arrayNode(Array.from({ length: rng.between(1, 4) }, () => rng.pick(['1', 'b', 'always', '', 'é', 'x'.repeat(40)])))]]],
    [1, () => [['pattern', rng.pick(['^beta-\\d+$', 'iPhone OS 1[78]_', '^MI \\d', '.'])]]],
    [1, () => [['patterns', arrayNode(['^a', 'b$'])]]],
  ])();
}

/** A valid rule with one or two matchers. */
function validRule(rng: Rng, i: number): JsonTree {
  const matchers: Array<[string, JsonTree]> = [];
  const kinds = ['device', 'ip', 'region', 'cookie', 'header', 'arg', 'percentage'];
  for (const kind of new Set([rng.pick(kinds), rng.pick(kinds)].slice(0, rng.between(1, 2)))) {
    switch (kind) {
      case 'device':
        matchers.push([kind, objectNode([...(rng.chance(0.5) ? [['header', rng.pick(TOKENS)] as [string, JsonTree]] : []), ...valueTest(rng)])]);
        break;
      case 'ip':
        matchers.push([kind, arrayNode(Array.from({ length: rng.between(1, 3) }, () => rng.pick(GOOD_CIDRS)))]);
        break;
      case 'region':
        matchers.push([kind, arrayNode([rng.pick(['beijing', 'tianjin', 'é'.repeat(128)])])]);
        break;
      case 'percentage':
        matchers.push([kind, objectNode([['value', rng.pick([0, 5, 12.5, 33.33, 100, 0.01])], ['by', rng.pick(['ip', 'cookie:uid', 'header:X-User'])]])]);
        break;
      default:
        matchers.push([kind, objectNode([['name', rng.pick(TOKENS)], ...valueTest(rng)])]);
    }
  }
  const entries: Array<[string, JsonTree]> = [
    ['match', objectNode(matchers)],
    ['version', rng.pick(['grey', 'stable', 'blue', 'v1.2/canary_x-y'])],
  ];
  if (rng.chance(0.5)) entries.unshift(['name', `rule-${i}`]);
  return objectNode(entries);
}

export function validPolicy(rng: Rng): JsonTree {
  const entries: Array<[string, JsonTree]> = [];
  if (rng.chance(0.6)) entries.push(['default', rng.pick(['stable', 'grey'])]);
  if (rng.chance(0.5)) entries.push(['seed', rng.pick(['spring-sale', '', 'é'.repeat(100), 's'.repeat(128)])]);
  entries.push(['rules', arrayNode(Array.from({ length: rng.size(6) }, (_, i) => validRule(rng, i)))]);
  return objectNode(entries);
}

/** Every object holding a field called `name`, anywhere in the tree. */
function objectsWithField(tree: JsonTree, name: string, out: JsonObjectNode[] = []): JsonObjectNode[] {
  if (isObjectNode(tree)) {
    if (tree.entries.some(([key]) => key === name)) out.push(tree);
    for (const [, value] of tree.entries) objectsWithField(value, name, out);
  } else if (isArrayNode(tree)) tree.items.forEach((item) => objectsWithField(item, name, out));
  return out;
}

/** Sets one field named like a policy field to an edge value; adds a rule holding it when the policy has none. */
function targeted(rng: Rng, policy: JsonTree): { tree: JsonTree; note: string } {
  const edge = rng.weighted<() => [string, JsonTree, string]>([
    [4, () => ['ip', arrayNode([...(rng.chance(0.5) ? [rng.pick(GOOD_CIDRS)] : []), rng.chance(0.7) ? rng.pick(BAD_CIDRS) : rng.pick(GOOD_CIDRS)]), 'a CIDR at the edge']],
    [4, () => ['pattern', rng.pick(EDGE_PATTERNS), 'a pattern at the edge']],
    [1, () => ['patterns', arrayNode(Array.from({ length: rng.pick([1, 64, 65]) }, () => rng.pick(EDGE_PATTERNS))), 'a pattern list']],
    [1, () => ['ip', arrayNode(Array.from({ length: rng.pick([4096, 4097]) }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`)), 'a long CIDR list']],
    [1, () => ['values', arrayNode(Array.from({ length: rng.pick([1024, 1025]) }, (_, i) => `v${i}`)), 'a long value list']],
    [1, () => ['values', arrayNode([rng.pick(['x'.repeat(4096), 'x'.repeat(4097), 'é'.repeat(4096), '🙂'.repeat(4096), '🙂'.repeat(4097)])]), 'a long value']],
    [1, () => ['region', arrayNode([rng.pick(['', 'é'.repeat(128), 'é'.repeat(129), 'x'.repeat(128), 'x'.repeat(129)])]), 'a region at the edge']],
    [2, () => ['value', rng.pick<JsonTree>([5.005, 100.01, -0.01, 0.01, 1e-7, 33.33, 99.99, '5', raw('NaN'), raw('0x10'), raw('1.'), raw('-.5'), raw('1e999'), raw('-0'), raw('05')]), 'a percentage at the edge']],
    [1, () => ['by', rng.pick(['ip', 'cookie:', 'cookie:uid', 'header:X-A', 'session', 'cookie:a b', `header:${'h'.repeat(128)}`, `header:${'h'.repeat(129)}`, 'IP']), 'a split key at the edge']],
    [2, () => ['version', rng.pick(['grey', 'v'.repeat(128), 'v'.repeat(129), '-grey', 'a b', 'é', '', 'grey\n', 'a/b.c_d-e']), 'a version name at the edge']],
    [1, () => ['default', rng.pick(['stable', 'd'.repeat(128), 'd'.repeat(129), '.x', 'x\u0000']), 'a default at the edge']],
    [1, () => ['seed', rng.pick(['s'.repeat(128), 's'.repeat(129), 'é'.repeat(128), 'é'.repeat(129), '🙂'.repeat(128), '🙂'.repeat(129), raw('"a\tb"'), raw('"\\ud800"'), raw('"\\ud83d\\ude00"')]), 'a seed at the edge']],
    [1, () => ['name', rng.pick(['n'.repeat(128), 'n'.repeat(129), 'é'.repeat(128), 'é'.repeat(129), raw('"tab\there"')]), 'a rule name at the edge']],
    [1, () => ['header', rng.pick(['X-A', '', 'X A', 'h'.repeat(128), 'h'.repeat(129), 'X-É', 'X:Y']), 'a header name at the edge']],
  ])();
  const [name, value, note] = edge;
  const found = objectsWithField(policy, name);
  if (found.length > 0) {
    setField(rng.pick(found), name, value);
    return { tree: policy, note };
  }
  // No such field yet: put it where it belongs in a fresh rule.
  const rules = field(policy, 'rules');
  const match: Array<[string, JsonTree]> =
    name === 'ip' || name === 'region'
      ? [[name, value]]
      : name === 'value' || name === 'by'
        ? [['percentage', objectNode([['value', 10], ['by', 'ip'], [name, value]])]]
        : ['pattern', 'patterns', 'values', 'header'].includes(name)
          ? [['device', objectNode([[name, value], ...(name === 'header' ? [['values', arrayNode(['x'])] as [string, JsonTree]] : [])])]]
          : [['header', objectNode([['name', 'X-A'], ['values', arrayNode(['x'])]])]];
  const rule = objectNode([['match', objectNode(match)], ['version', name === 'version' ? value : 'grey'], ...(name === 'name' ? [['name', value] as [string, JsonTree]] : [])]);
  if (isObjectNode(policy)) {
    if (name === 'default' || name === 'seed') setField(policy, name, value);
    else if (rules !== undefined && isArrayNode(rules)) rules.items.push(rule);
    else setField(policy, 'rules', arrayNode([rule]));
  }
  return { tree: policy, note };
}

/** Whole documents that sit on the edges of JSON itself or of the policy's shape. */
function special(rng: Rng): { text: string; note: string } {
  return rng.weighted<() => { text: string; note: string }>([
    [2, () => ({ text: rng.pick(['[]', '{}', '{"rules": {}}', '{"rules": []}', '{"rules": [[]]}', '{"rules": [{}]}', 'null', '"x"', '42', '', ' ', '{"rules": [{"match": [], "version": "g"}]}', '{"rules":[{"match":{"device":[]},"version":"g"}]}']), note: 'a document at the edge of the shape' })],
    [2, () => ({ text: rng.pick(['{"default":"stable",}', "{'default':'stable'}", '{"default":"stable"} x', '\ufeff{}', '{"default":"stable"}\u0000', '{"default" : "stable" }\n', '\t{"default":\r\n"stable"}', '{"default":"st\\u0061ble"}', '{"default":"st\\x61ble"}', '{"default":"stable","default":"grey"}', '{"seed":"\\u0000"}', '{"seed":"\\/"}', '{"rules":[],"rules":{}}', '{"rules":{},"rules":[]}']), note: 'JSON at the edge' })],
    [1, () => ({ text: render(deepNesting(rng.pick([999, 1000, 1001, 10_000]), rng.pick(['array', 'object', 'mixed'] as const))), note: 'deep nesting' })],
    [1, () => ({ text: `{"rules":[{"match":{"ip":["10.0.0.0/8"]},"version":"grey"}],"seed":${render(deepNesting(rng.pick([10, 1000, 10_000]), 'object'))}}`, note: 'deep nesting in a field' })],
    [
      1,
      () => {
        // Valid in every way but its size: 300 rules of 4 KiB.
        const rules = Array.from({ length: rng.pick([200, 256, 260]) }, (_, i) => ({ match: { header: { name: 'X-A', values: ['v'.repeat(4096)] } }, version: `v${i}` }));
        return { text: JSON.stringify({ rules }), note: `${rules.length} rules of 4 KiB` };
      },
    ],
  ])();
}

export function generatePolicyCase(rng: Rng): PolicyCase {
  return rng.weighted<() => PolicyCase>([
    [2, () => ({ text: render(validPolicy(rng)), notes: ['valid'] })],
    [
      4,
      () => {
        const edited = targeted(rng, validPolicy(rng));
        return { text: render(edited.tree), notes: [edited.note] };
      },
    ],
    [
      3,
      () => {
        const mutated = mutateDocument(rng, validPolicy(rng), { textMutationChance: 0.2, maxBytes: 256 * 1024 });
        return { text: mutated.text, notes: mutated.notes };
      },
    ],
    [
      1,
      () => {
        const built = special(rng);
        return { text: built.text, notes: [built.note] };
      },
    ],
  ])();
}

/** The policy the policies target keeps in force between cases: requests carrying `mark` go to grey. */
export function markerPolicy(mark: string): string {
  return JSON.stringify({ default: 'stable', rules: [{ name: 'fuzz-marker', match: { header: { name: 'X-Fuzz-Mark', values: [mark] } }, version: 'grey' }] });
}
