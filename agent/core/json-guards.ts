/** Small readers for untrusted JSON: they never throw and never coerce silently. */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringOr(value: unknown, fallback: string | null): string | null {
  return typeof value === 'string' ? value : fallback;
}

export function numberOr(value: unknown, fallback: number | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 65535;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** String.prototype.isWellFormed (ES2024, in Node 20; not in this project's ES2023 typings). */
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/**
 * False for a string with a lone surrogate, which JSON ("\ud800") can carry
 * but UTF-8 cannot: the plugin's JSON decoder refuses it, and with it the
 * whole push. Node's own check answers at once for text without any UTF-16
 * (every id of a 100,000-task listing is asked); the regular expression is
 * for runtimes without it.
 */
export function isWellFormedText(value: string): boolean {
  return nativeIsWellFormed !== undefined ? nativeIsWellFormed.call(value) : !LONE_SURROGATE.test(value);
}
