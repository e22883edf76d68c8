/**
 * Checks a split policy against schemas/policy.schema.json, then what a JSON
 * Schema cannot say: CIDRs parse, regexes compile, percentages are in steps of
 * 0.01. Messages start with the JSON pointer of the field, the same paths the
 * Lua plugin reports for a policy it refuses.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project-paths.js';
import { isCidr } from './cidr.js';
import { pcreToJavaScript } from './pcre-compat.js';

export interface Policy {
  readonly default?: string;
  readonly seed?: string;
  readonly rules?: ReadonlyArray<{ name?: string; match: Record<string, unknown>; version: string }>;
}

export type PolicyCheck = { ok: true; policy: Policy } | { ok: false; errors: string[] };

const SCHEMA_PATH = join(PROJECT_ROOT, 'schemas', 'policy.schema.json');
const MAX_ERRORS = 10;
/** The plugin refuses policy text larger than this (lua/edgeroute/policy/check.lua); so does the CLI. */
export const MAX_POLICY_BYTES = 1024 * 1024;

let compiled: { validate: ReturnType<Ajv['compile']>; maxRules: number } | null = null;

function schemaValidator(): { validate: ReturnType<Ajv['compile']>; maxRules: number } {
  if (compiled === null) {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { properties: { rules: { maxItems: number } } };
    compiled = { validate: new Ajv({ allErrors: true, strict: false }).compile(schema), maxRules: schema.properties.rules.maxItems };
  }
  return compiled;
}

/** Parses and checks policy text (as typed into redis-cli or a file). */
export function checkPolicyText(text: string): PolicyCheck {
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) return { ok: false, errors: [`/: larger than ${MAX_POLICY_BYTES} bytes`] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`/: not valid JSON: ${(err as Error).message}`] };
  }
  // Also where a duplicate key was overwritten, which checkPolicy never sees (the plugin reads every byte).
  const lexical = lexicalProblem(text);
  if (lexical !== null) return { ok: false, errors: [`/: not valid JSON: ${lexical}`] };
  return checkPolicy(value);
}

/** The plugin's JSON reader (lua/edgeroute/policy/json.lua) stops at this depth; JSON.parse has no limit. */
export const MAX_JSON_DEPTH = 1000;

/**
 * What the plugin refuses in JSON text that JSON.parse takes: nesting deeper
 * than MAX_JSON_DEPTH, and a \uD800-\uDFFF escape that is not half of a pair.
 * `text` is known to parse.
 */
function lexicalProblem(text: string): string | null {
  const unit = (at: number): number => (text[at] === '\\' && text[at + 1] === 'u' ? Number.parseInt(text.slice(at + 2, at + 6), 16) : -1);
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '"') inString = false;
      else if (c === '\\') {
        const code = unit(i);
        if (code < 0) i += 1; // a one-character escape, \\ included
        else if (code >= 0xdc00 && code <= 0xdfff) return 'a \\u escape is a lone UTF-16 surrogate';
        else if (code >= 0xd800 && code <= 0xdbff) {
          const low = unit(i + 6);
          if (low < 0xdc00 || low > 0xdfff) return 'a \\u escape is a lone UTF-16 surrogate';
          i += 11;
        } else i += 5;
      }
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_JSON_DEPTH) return `nested deeper than ${MAX_JSON_DEPTH} levels`;
    } else if (c === ']' || c === '}') depth--;
  }
  return null;
}

export function checkPolicy(value: unknown): PolicyCheck {
  const { validate, maxRules } = schemaValidator();
  // With allErrors, Ajv appends each bad rule's errors to a copy of all before
  // them: 65,536 bad rules took 10 s (found by fuzzing). Past the limit nothing else matters.
  const rules = typeof value === 'object' && value !== null ? (value as { rules?: unknown }).rules : undefined;
  if (Array.isArray(rules) && rules.length > maxRules) return { ok: false, errors: [`/rules: must NOT have more than ${maxRules} items`] };
  if (!validate(value)) return { ok: false, errors: describeSchemaErrors(validate.errors ?? []) };
  // JSON.parse keeps a lone surrogate ("\ud800"), which has no UTF-8 form: the plugin refuses the text.
  // Looked for once the schema holds, so the walk is a few levels deep at most.
  const unpaired = loneSurrogateAt(value, '');
  if (unpaired !== null) return { ok: false, errors: [`${unpaired || '/'}: not valid JSON: a string holds a lone UTF-16 surrogate`] };
  const policy = value as Policy;
  const errors: string[] = [];
  policy.rules?.forEach((rule, i) => checkRule(rule.match, `/rules/${i}/match`, errors));
  if (errors.length > 0) return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  // What the API stores is this policy re-encoded: it must fit the plugin's limit too.
  if (Buffer.byteLength(JSON.stringify(policy), 'utf8') > MAX_POLICY_BYTES) return { ok: false, errors: [`/: larger than ${MAX_POLICY_BYTES} bytes`] };
  return { ok: true, policy };
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The JSON pointer of the first string (key or value) with a lone surrogate, or null. */
function loneSurrogateAt(value: unknown, at: string): string | null {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? at : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = loneSurrogateAt(value[i], `${at}/${i}`);
      if (found !== null) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return at;
      const found = loneSurrogateAt(item, `${at}/${key}`);
      if (found !== null) return found;
    }
  }
  return null;
}

function checkRule(match: Record<string, unknown>, at: string, errors: string[]): void {
  const ip = match.ip as string[] | undefined;
  ip?.forEach((cidr, i) => {
    if (!isCidr(cidr)) errors.push(`${at}/ip/${i}: ${JSON.stringify(cidr)} is not an IPv4 or IPv6 CIDR`);
  });
  for (const name of ['device', 'cookie', 'header', 'arg'] as const) {
    const test = match[name] as { pattern?: string; patterns?: string[] } | undefined;
    if (test?.pattern !== undefined) checkRegex(test.pattern, `${at}/${name}/pattern`, errors);
    test?.patterns?.forEach((p, i) => checkRegex(p, `${at}/${name}/patterns/${i}`, errors));
  }
  const percentage = match.percentage as { value: number } | undefined;
  if (percentage && Math.abs(percentage.value * 100 - Math.round(percentage.value * 100)) > 1e-6) {
    errors.push(`${at}/percentage/value: ${percentage.value} is not in steps of 0.01`);
  }
}

/**
 * The plugin runs PCRE; JavaScript's engine is close enough to catch typos,
 * once PCRE's own syntax is translated (pcre-compat.ts) and its leading
 * inline flags such as (?i) are read as flags.
 */
function checkRegex(pattern: string, at: string, errors: string[]): void {
  const refuse = (why: string) => errors.push(`${at}: ${JSON.stringify(pattern)} is not a valid regex (${why})`);
  const translated = pcreToJavaScript(pattern);
  if (!translated.ok) return void refuse(translated.message);
  const source = translated.source;
  const inline = /^\(\?([imsx]+)\)/.exec(source);
  const flags = inline ? [...new Set(inline[1]!.replace('x', ''))].join('') : '';
  try {
    new RegExp(inline ? source.slice(inline[0].length) : source, flags);
  } catch (err) {
    refuse((err as Error).message);
  }
}

function describeSchemaErrors(errors: readonly ErrorObject[]): string[] {
  const messages: string[] = [];
  for (const error of errors) {
    // oneOf/allOf restate their branches' errors; keep the direct ones.
    if (error.keyword === 'if') continue;
    const at = error.instancePath || '/';
    const params = error.params as Record<string, unknown>;
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties':
        message = `unknown field ${JSON.stringify(params.additionalProperty)}`;
        break;
      case 'required':
        message = error.schemaPath.includes('valueTest') ? 'needs exactly one of values, pattern or patterns' : `missing field ${JSON.stringify(params.missingProperty)}`;
        break;
      case 'oneOf':
        message = 'needs exactly one of values, pattern or patterns';
        break;
      default:
        message = error.message ?? error.keyword;
    }
    const line = `${at}: ${message}`;
    if (!messages.includes(line)) messages.push(line);
    // Found by fuzzing: an array of 87,000 bad items gives as many errors, and the
    // includes() above made that 100 s of work; ten are all anyone reads.
    if (messages.length === MAX_ERRORS) break;
  }
  return messages;
}
