/**
 * JSON as a tree that can say what plain JavaScript values cannot: duplicate
 * keys, "__proto__" as an ordinary key (an object literal would set the
 * prototype instead), and raw text spliced in as a value (NaN, 0x1F, 1e999,
 * 10,000 levels of nesting, a lone surrogate escape). Mutators work on the
 * tree; render() writes the text that the code under test receives.
 */
import type { Rng } from './prng.js';

export type JsonTree = null | boolean | number | string | JsonArrayNode | JsonObjectNode | RawJson;

export interface JsonArrayNode {
  readonly kind: 'array';
  items: JsonTree[];
}

export interface JsonObjectNode {
  readonly kind: 'object';
  /** In document order; a key may appear twice. */
  entries: Array<[string, JsonTree]>;
}

/** Text written as is: valid JSON or not. */
export interface RawJson {
  readonly kind: 'raw';
  readonly text: string;
}

export const raw = (text: string): RawJson => ({ kind: 'raw', text });
export const arrayNode = (items: JsonTree[]): JsonArrayNode => ({ kind: 'array', items });
export const objectNode = (entries: Array<[string, JsonTree]>): JsonObjectNode => ({ kind: 'object', entries });

export function isArrayNode(tree: JsonTree): tree is JsonArrayNode {
  return typeof tree === 'object' && tree !== null && tree.kind === 'array';
}

export function isObjectNode(tree: JsonTree): tree is JsonObjectNode {
  return typeof tree === 'object' && tree !== null && tree.kind === 'object';
}

/** From a parsed JSON value. */
export function toTree(value: unknown): JsonTree {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (Array.isArray(value)) return arrayNode(value.map(toTree));
  if (typeof value === 'object') return objectNode(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toTree(v)]));
  throw new Error(`not a JSON value: ${typeof value}`);
}

export function render(tree: JsonTree): string {
  const out: string[] = [];
  write(tree, out);
  return out.join('');
}

function write(tree: JsonTree, out: string[]): void {
  if (tree === null || typeof tree === 'boolean' || typeof tree === 'string') {
    out.push(JSON.stringify(tree));
  } else if (typeof tree === 'number') {
    // NaN and the infinities have no JSON spelling: write what a sloppy encoder would.
    out.push(Number.isFinite(tree) ? JSON.stringify(tree) : String(tree));
  } else if (tree.kind === 'raw') {
    out.push(tree.text);
  } else if (tree.kind === 'array') {
    out.push('[');
    tree.items.forEach((item, i) => {
      if (i > 0) out.push(',');
      write(item, out);
    });
    out.push(']');
  } else {
    out.push('{');
    tree.entries.forEach(([key, value], i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(key), ':');
      write(value, out);
    });
    out.push('}');
  }
}

export function clone(tree: JsonTree): JsonTree {
  if (tree === null || typeof tree !== 'object' || tree.kind === 'raw') return tree;
  if (tree.kind === 'array') return arrayNode(tree.items.map(clone));
  return objectNode(tree.entries.map(([k, v]) => [k, clone(v)]));
}

/** Reads a field of an object node (the last one, as JSON.parse does with duplicates). */
export function field(tree: JsonTree, key: string): JsonTree | undefined {
  if (!isObjectNode(tree)) return undefined;
  for (let i = tree.entries.length - 1; i >= 0; i--) if (tree.entries[i]![0] === key) return tree.entries[i]![1];
  return undefined;
}

export function setField(tree: JsonObjectNode, key: string, value: JsonTree): void {
  const entry = tree.entries.find(([k]) => k === key);
  if (entry) entry[1] = value;
  else tree.entries.push([key, value]);
}

/** A place in the tree a mutation can replace: a container and the index of one of its values. */
interface Slot {
  readonly parent: JsonArrayNode | JsonObjectNode;
  readonly index: number;
}

function slots(tree: JsonTree, out: Slot[] = []): Slot[] {
  if (isArrayNode(tree)) {
    tree.items.forEach((item, index) => {
      out.push({ parent: tree, index });
      slots(item, out);
    });
  } else if (isObjectNode(tree)) {
    tree.entries.forEach(([, value], index) => {
      out.push({ parent: tree, index });
      slots(value, out);
    });
  }
  return out;
}

function containers(tree: JsonTree, out: Array<JsonArrayNode | JsonObjectNode> = []): Array<JsonArrayNode | JsonObjectNode> {
  if (isArrayNode(tree)) {
    out.push(tree);
    tree.items.forEach((item) => containers(item, out));
  } else if (isObjectNode(tree)) {
    out.push(tree);
    tree.entries.forEach(([, value]) => containers(value, out));
  }
  return out;
}

function valueAt(slot: Slot): JsonTree {
  return slot.parent.kind === 'array' ? slot.parent.items[slot.index]! : slot.parent.entries[slot.index]![1];
}

function replaceAt(slot: Slot, value: JsonTree): void {
  if (slot.parent.kind === 'array') slot.parent.items[slot.index] = value;
  else slot.parent.entries[slot.index]![1] = value;
}

/** Strings that have broken parsers before: escapes, invisible and wide characters, separators JSON allows and JavaScript once did not. */
export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\t\r\n',
  '\u2028\u2029',
  '\u200b\u200d\ufeff',
  '\u202e\u202dltr',
  'e\u0301\u0301\u0301',
  '\ud83d\ude00\ud83d\udc4d\ud83c\udffd',
  '\uff0f\uff0e\uff0e',
  '\u0130\u0131\u017f',
  '"\\\'`',
  '../../../../etc/passwd',
  '%00%0d%0a',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  "'; DROP TABLE apps; --",
  '\u00ff\u00fe',
  '\x7f\x1b[31m',
  '/',
  '//',
  '/a/../b',
  '0',
  '-1',
  'NaN',
  'true',
  'null',
  '__proto__',
  'constructor',
  '\\u0000',
];

/** Numbers at the edges, some with no JSON spelling (written raw). */
export const NASTY_NUMBERS: readonly JsonTree[] = [
  0,
  -0,
  -1,
  1.5,
  0.1 + 0.2,
  65535,
  65536,
  2 ** 31,
  2 ** 53 + 1,
  1e308,
  -1e308,
  5e-324,
  raw('1e999'),
  raw('-1e999'),
  raw('NaN'),
  raw('Infinity'),
  raw('-Infinity'),
  raw('0x1F'),
  raw('01'),
  raw('1.'),
  raw('.5'),
  raw('+1'),
  raw('-'),
  raw('1e'),
  raw('-0x10'),
  raw('-.5'),
  raw('123456789012345678901234567890'),
];

/** Keys that pollute prototypes in careless code. */
export const POLLUTING_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString', 'valueOf'];

export function nastyString(rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => rng.pick(NASTY_STRINGS)],
    [2, () => rng.stringOf('abcxyz0123456789-_./:', rng.size(64))],
    [1, () => randomUnicode(rng, rng.size(64))],
    [1, () => 'x'.repeat(rng.pick([255, 256, 1024, 4096, 4097, 65_536]))],
  ])();
}

/** Any UTF-16 code units, lone surrogates included. */
export function randomUnicode(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out += String.fromCharCode(
      rng.weighted<number>([
        [4, rng.between(0x20, 0x7e)],
        [1, rng.between(0, 0x1f)],
        [1, rng.between(0x80, 0x7ff)],
        [1, rng.between(0x800, 0xffff)],
      ]),
    );
  }
  return out;
}

/** `depth` levels of arrays or objects around a small value, written raw (a recursive writer would overflow). */
export function deepNesting(depth: number, style: 'array' | 'object' | 'mixed'): RawJson {
  if (style === 'array') return raw('['.repeat(depth) + '1' + ']'.repeat(depth));
  if (style === 'object') return raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
  return raw('[{"a":'.repeat(depth) + '1' + '}]'.repeat(depth));
}

export function randomScalar(rng: Rng): JsonTree {
  return rng.weighted<() => JsonTree>([
    [1, () => null],
    [1, () => rng.chance(0.5)],
    [2, () => rng.pick(NASTY_NUMBERS)],
    [3, () => nastyString(rng)],
  ])();
}

export function randomValue(rng: Rng, depth = 0): JsonTree {
  if (depth > 2 || rng.chance(0.6)) return randomScalar(rng);
  if (rng.chance(0.5)) return arrayNode(Array.from({ length: rng.size(4) }, () => randomValue(rng, depth + 1)));
  return objectNode(Array.from({ length: rng.size(4) }, () => [rng.chance(0.2) ? rng.pick(POLLUTING_KEYS) : nastyString(rng), randomValue(rng, depth + 1)]));
}

/** A value of another JSON type than `value`. */
function otherType(rng: Rng, value: JsonTree): JsonTree {
  const typeOf = (v: JsonTree) => (v === null ? 'null' : typeof v !== 'object' ? typeof v : v.kind);
  const current = typeOf(value);
  for (;;) {
    const candidate = rng.pick<JsonTree>([null, true, false, 0, 1, -1, 8080, '', '8080', 'x', arrayNode([]), objectNode([]), arrayNode([1, 'a']), objectNode([['a', 1]])]);
    if (typeOf(candidate) !== current) return candidate;
  }
}

export type StructureMutation =
  | 'delete-key'
  | 'swap-type'
  | 'null'
  | 'huge-string'
  | 'huge-array'
  | 'deep-nesting'
  | 'nasty-number'
  | 'unicode'
  | 'duplicate-key'
  | 'polluting-key'
  | 'rename-key'
  | 'empty-container'
  | 'random-value';

export const STRUCTURE_MUTATIONS: readonly StructureMutation[] = [
  'delete-key',
  'swap-type',
  'null',
  'huge-string',
  'huge-array',
  'deep-nesting',
  'nasty-number',
  'unicode',
  'duplicate-key',
  'polluting-key',
  'rename-key',
  'empty-container',
  'random-value',
];

/**
 * Mutates `tree` in place (the root itself is replaced through the return
 * value) and says what it did. `maxBytes` bounds what one mutation adds.
 */
export function mutateStructure(rng: Rng, tree: JsonTree, mutation: StructureMutation, maxBytes = 1 << 20): { tree: JsonTree; note: string } {
  const allSlots = slots(tree);
  const allContainers = containers(tree);
  const slot = allSlots.length > 0 ? rng.pick(allSlots) : null;
  const objects = allContainers.filter(isObjectNode);
  const replace = (value: JsonTree, note: string): { tree: JsonTree; note: string } => {
    if (slot === null) return { tree: value, note: `${note} (root)` };
    replaceAt(slot, value);
    return { tree, note };
  };
  switch (mutation) {
    case 'delete-key': {
      const object = objects.filter((o) => o.entries.length > 0);
      if (object.length === 0) return replace(null, 'null (no key to delete)');
      const target = rng.pick(object);
      const [key] = target.entries.splice(rng.int(target.entries.length), 1)[0]!;
      return { tree, note: `deleted ${JSON.stringify(key)}` };
    }
    case 'swap-type':
      return replace(otherType(rng, slot ? valueAt(slot) : tree), 'swapped a type');
    case 'null':
      return replace(null, 'null');
    case 'huge-string': {
      const length = Math.min(maxBytes, rng.pick([8_192, 65_536, 100_000, 1 << 20]));
      return replace(rng.pick(['x', 'é', '\u0000', '"', '\\', '🙂']).repeat(rng.chance(0.5) ? length : Math.floor(length / 4)), `huge string of ~${length}`);
    }
    case 'huge-array': {
      // Copies, never one shared node: a later mutation inside it would be multiplied by the length.
      const current = slot ? valueAt(slot) : 1;
      const sample = rng.pick<JsonTree>([0, 'x', null, objectNode([]), current]);
      const itemBytes = render(sample).length + 1;
      const length = Math.max(1, Math.min(Math.floor(maxBytes / itemBytes), rng.pick([1_025, 4_097, 10_000, 100_000])));
      return replace(arrayNode(Array.from({ length }, () => clone(sample))), `array of ${length}`);
    }
    case 'deep-nesting': {
      const depth = rng.pick([100, 1_000, 1_001, 5_000, 10_000]);
      return replace(deepNesting(depth, rng.pick(['array', 'object', 'mixed'] as const)), `nested ${depth} deep`);
    }
    case 'nasty-number':
      return replace(rng.pick(NASTY_NUMBERS), 'nasty number');
    case 'unicode':
      return replace(rng.chance(0.3) ? raw(rng.pick(['"\\ud800"', '"\\udc00x"', '"\\ud83d"', '"a\\u0000b"', '"\\uZZZZ"', '"\\x41"', '"\t"'])) : randomUnicode(rng, rng.size(200)), 'unicode');
    case 'duplicate-key': {
      const object = objects.filter((o) => o.entries.length > 0);
      if (object.length === 0) return replace(otherType(rng, null), 'no key to duplicate');
      const target = rng.pick(object);
      const [key] = rng.pick(target.entries);
      const at = rng.int(target.entries.length + 1);
      target.entries.splice(at, 0, [key, rng.chance(0.5) ? randomScalar(rng) : otherType(rng, field(target, key) ?? null)]);
      return { tree, note: `duplicated ${JSON.stringify(key)}` };
    }
    case 'polluting-key': {
      const key = rng.pick(POLLUTING_KEYS);
      const value: JsonTree = rng.chance(0.7) ? objectNode([['polluted', true], ['toString', 'x']]) : randomScalar(rng);
      const target = objects.length > 0 ? rng.pick(objects) : null;
      if (target === null) return replace(objectNode([[key, value]]), `only ${key}`);
      target.entries.splice(rng.int(target.entries.length + 1), 0, [key, value]);
      return { tree, note: `added ${key}` };
    }
    case 'rename-key': {
      const object = objects.filter((o) => o.entries.length > 0);
      if (object.length === 0) return replace(randomScalar(rng), 'no key to rename');
      const entry = rng.pick(rng.pick(object).entries);
      const before = entry[0];
      entry[0] = rng.pick([before.toUpperCase(), `${before} `, before.slice(1), `${before}_`, before.replace(/[a-z]/, 'x'), '']);
      return { tree, note: `renamed ${JSON.stringify(before)}` };
    }
    case 'empty-container':
      return replace(rng.chance(0.5) ? arrayNode([]) : objectNode([]), 'emptied');
    case 'random-value':
      return replace(randomValue(rng), 'random value');
  }
}

export type TextMutation = 'truncate' | 'insert-bytes' | 'delete-span' | 'flip-char' | 'random-bytes' | 'wrong-document';

export const TEXT_MUTATIONS: readonly TextMutation[] = ['truncate', 'insert-bytes', 'delete-span', 'flip-char', 'random-bytes', 'wrong-document'];

/** Characters that matter to JSON lexers, and some that should not appear at all. */
const LEXER_CHARS = '{}[]",:\\ \t\r\n0123456789-+.eEtrufalsn\u0000\u0001\u001f\u007f\u00ff\u2028\ufeff\ud800';

export function mutateText(rng: Rng, text: string, mutation: TextMutation): { text: string; note: string } {
  const at = rng.int(text.length + 1);
  switch (mutation) {
    case 'truncate':
      return { text: text.slice(0, at), note: `truncated at ${at}` };
    case 'insert-bytes':
      return { text: text.slice(0, at) + rng.stringOf(LEXER_CHARS, rng.between(1, 8)) + text.slice(at), note: `bytes inserted at ${at}` };
    case 'delete-span':
      return { text: text.slice(0, at) + text.slice(at + rng.between(1, 16)), note: `span deleted at ${at}` };
    case 'flip-char': {
      if (text.length === 0) return { text: 'x', note: 'flipped nothing' };
      const i = Math.min(at, text.length - 1);
      return { text: text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ (1 << rng.int(7))) + text.slice(i + 1), note: `char flipped at ${i}` };
    }
    case 'random-bytes':
      return { text: randomUnicode(rng, rng.size(512)), note: 'random bytes' };
    case 'wrong-document':
      return { text: rng.pick(['', ' ', 'null', '[]', '{}', '"apps"', '42', 'true', '[{}]', '{"apps": {}}', '{"apps": null}', '<html>502 Bad Gateway</html>', '\ufeff{}']), note: 'another document' };
  }
}

/**
 * Applies 1–3 mutations, mostly to the structure, sometimes to the text; the
 * note lists them, to print with a failing case.
 */
export function mutateDocument(rng: Rng, tree: JsonTree, opts: { textMutationChance?: number; maxBytes?: number } = {}): { text: string; notes: string[]; structural: boolean } {
  let current = clone(tree);
  const notes: string[] = [];
  const count = rng.between(1, 3);
  for (let i = 0; i < count; i++) {
    const mutated = mutateStructure(rng, current, rng.pick(STRUCTURE_MUTATIONS), opts.maxBytes);
    current = mutated.tree;
    notes.push(mutated.note);
  }
  let text = render(current);
  const structural = !rng.chance(opts.textMutationChance ?? 0.25);
  if (!structural) {
    const mutated = mutateText(rng, text, rng.pick(TEXT_MUTATIONS));
    text = mutated.text;
    notes.push(mutated.note);
  }
  return { text, notes, structural };
}

/**
 * Replaces the value of one field whose key matches `key` (anywhere in the
 * tree) with an edge value: random mutations rarely hit the one field a bug
 * hides behind, such as a port or an id.
 */
export function mutateNamedField(rng: Rng, tree: JsonTree, key: RegExp): { tree: JsonTree; note: string } | null {
  const matching = slots(tree).filter((slot) => slot.parent.kind === 'object' && key.test(slot.parent.entries[slot.index]![0]));
  if (matching.length === 0) return null;
  const slot = rng.pick(matching);
  const name = (slot.parent as JsonObjectNode).entries[slot.index]![0];
  const value = rng.weighted<() => JsonTree>([
    [3, () => rng.pick(NASTY_NUMBERS.filter((n) => typeof n === 'number'))],
    [1, () => rng.pick(NASTY_NUMBERS)],
    [2, () => nastyString(rng)],
    [1, () => otherType(rng, valueAt(slot))],
    [1, () => arrayNode(Array.from({ length: rng.size(8) }, () => rng.pick(NASTY_NUMBERS)))],
  ])();
  replaceAt(slot, value);
  return { tree, note: `field ${JSON.stringify(name)} set to ${render(value).slice(0, 40)}` };
}
