/**
 * Flags with `EDGEROUTE_*` environment fallbacks: `--nginx-admin` reads
 * EDGEROUTE_NGINX_ADMIN when the flag is absent. Flags win over the environment.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  readonly name: string;
  readonly kind: 'string' | 'boolean' | 'list';
  readonly help: string;
  readonly default?: string;
  readonly required?: boolean;
}

export class UsageError extends Error {}

export type OptionValues = Record<string, string | boolean | string[] | undefined> & { readonly positionals: readonly string[] };

export function envName(option: string): string {
  return `EDGEROUTE_${option.replace(/-/g, '_').toUpperCase()}`;
}

export function readOptions(specs: readonly OptionSpec[], argv: readonly string[], env: NodeJS.ProcessEnv, allowPositionals = false): OptionValues {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals,
      options: Object.fromEntries(
        [...specs, HELP].map((s) => [s.name, { type: s.kind === 'boolean' ? 'boolean' : 'string', multiple: s.kind === 'list' }] as const),
      ),
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values: OptionValues = { help: parsed.values.help === true, positionals: parsed.positionals };
  for (const spec of specs) {
    const flag = parsed.values[spec.name];
    const fromEnv = env[envName(spec.name)];
    let value: string | boolean | string[] | undefined;
    if (spec.kind === 'list') {
      const raw = (flag as string[] | undefined) ?? (fromEnv !== undefined ? [fromEnv] : spec.default !== undefined ? [spec.default] : undefined);
      value = raw?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
    } else if (spec.kind === 'boolean') {
      value = flag === true || (flag === undefined && fromEnv !== undefined && /^(1|true|yes)$/i.test(fromEnv));
    } else {
      value = (flag as string | undefined) ?? fromEnv ?? spec.default;
    }
    if (spec.required && !values.help && (value === undefined || value === '' || (Array.isArray(value) && value.length === 0))) {
      throw new UsageError(`--${spec.name} (or ${envName(spec.name)}) is required`);
    }
    values[spec.name] = value;
  }
  return values;
}

export function numberOption(values: OptionValues, name: string, min: number): number {
  const raw = values[name];
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(value) || value < min) {
    throw new UsageError(`--${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function stringOption(values: OptionValues, name: string): string | null {
  const value = values[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

const HELP: OptionSpec = { name: 'help', kind: 'boolean', help: 'show this help' };

export function helpText(command: string, summary: string, specs: readonly OptionSpec[]): string {
  const lines = [`Usage: edgeroute ${command} [options]`, '', summary, '', 'Options (each also read from its environment variable):'];
  for (const spec of [...specs, HELP]) {
    const arg = spec.kind === 'boolean' ? '' : spec.kind === 'list' ? ' A[,B...]' : ' VALUE';
    const extra = [spec.required ? 'required' : null, spec.default !== undefined ? `default ${spec.default}` : null].filter(Boolean).join(', ');
    lines.push(`  --${spec.name}${arg}`.padEnd(34) + `${spec.help}${extra ? ` (${extra})` : ''}  [${envName(spec.name)}]`);
  }
  return lines.join('\n');
}
