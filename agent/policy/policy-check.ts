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

export interface Policy {
  readonly default?: string;
  readonly seed?: string;
  readonly rules?: ReadonlyArray<{ name?: string; match: Record<string, unknown>; version: string }>;
}

export type PolicyCheck = { ok: true; policy: Policy } | { ok: false; errors: string[] };

const SCHEMA_PATH = join(PROJECT_ROOT, 'schemas', 'policy.schema.json');
const MAX_ERRORS = 10;

let compiled: ReturnType<Ajv['compile']> | null = null;

function schemaValidator(): ReturnType<Ajv['compile']> {
  compiled ??= new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);
  return compiled;
}

/** Parses and checks policy text (as typed into redis-cli or a file). */
export function checkPolicyText(text: string): PolicyCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`/: not valid JSON: ${(err as Error).message}`] };
  }
  return checkPolicy(value);
}

export function checkPolicy(value: unknown): PolicyCheck {
  const validate = schemaValidator();
  if (!validate(value)) return { ok: false, errors: describeSchemaErrors(validate.errors ?? []) };
  const policy = value as Policy;
  const errors: string[] = [];
  policy.rules?.forEach((rule, i) => checkRule(rule.match, `/rules/${i}/match`, errors));
  return errors.length > 0 ? { ok: false, errors: errors.slice(0, MAX_ERRORS) } : { ok: true, policy };
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
 * once PCRE's leading inline flags such as (?i) are read as flags.
 */
function checkRegex(pattern: string, at: string, errors: string[]): void {
  const inline = /^\(\?([imsx]+)\)/.exec(pattern);
  const flags = inline ? [...new Set(inline[1]!.replace('x', ''))].join('') : '';
  try {
    new RegExp(inline ? pattern.slice(inline[0].length) : pattern, flags);
  } catch (err) {
    errors.push(`${at}: ${JSON.stringify(pattern)} is not a valid regex (${(err as Error).message})`);
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
  }
  return messages.slice(0, MAX_ERRORS);
}
