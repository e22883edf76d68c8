/**
 * Flags with `EDGEROUTE_*` environment fallbacks: `--nginx-admin` reads
 * EDGEROUTE_NGINX_ADMIN when the flag is absent. Flags win over the environment.
 */
import { readFileSync } from 'node:fs';
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

/**
 * `--config FILE` (or EDGEROUTE_CONFIG): JSON with one section per command,
 * e.g. {"agent": {"marathon": "http://m1:8080", "listen": "127.0.0.1:9090"},
 * "nginx-conf": {"out": "/etc/edgeroute/nginx"}}. Keys are the flag names.
 */
function configSection(path: string | undefined, command: string, specs: readonly OptionSpec[]): Record<string, string | boolean | string[]> {
  if (path === undefined || path === '') return {};
  let file: unknown;
  try {
    file = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
  if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new UsageError(`--config ${path}: must be a JSON object with a section per command`);
  const section = (file as Record<string, unknown>)[command];
  if (section === undefined) return {};
  if (typeof section !== 'object' || section === null || Array.isArray(section)) throw new UsageError(`--config ${path}: "${command}" must be an object`);
  const known = new Map(specs.map((s) => [s.name, s]));
  const values: Record<string, string | boolean | string[]> = {};
  for (const [key, value] of Object.entries(section)) {
    const spec = known.get(key);
    if (!spec) throw new UsageError(`--config ${path}: "${command}" has no option "${key}"`);
    if (spec.kind === 'boolean' && typeof value === 'boolean') values[key] = value;
    else if (spec.kind === 'list' && Array.isArray(value) && value.every((v) => typeof v === 'string')) values[key] = value as string[];
    else if (typeof value === 'string' || typeof value === 'number') values[key] = spec.kind === 'list' ? [String(value)] : String(value);
    else throw new UsageError(`--config ${path}: "${command}.${key}" has the wrong type`);
  }
  return values;
}

export function readOptions(specs: readonly OptionSpec[], argv: readonly string[], env: NodeJS.ProcessEnv, allowPositionals = false, command = ''): OptionValues {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals,
      options: Object.fromEntries(
        [...specs, HELP, CONFIG].map((s) => [s.name, { type: s.kind === 'boolean' ? 'boolean' : 'string', multiple: s.kind === 'list' }] as const),
      ),
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const configFile = (parsed.values.config as string | undefined) ?? env.EDGEROUTE_CONFIG;
  // `config` too: `edgeroute install` installs the file itself.
  const values: OptionValues = { help: parsed.values.help === true, positionals: parsed.positionals, config: configFile };
  const fromFile = configSection(configFile, command, specs);
  for (const spec of specs) {
    const flag = parsed.values[spec.name];
    const file = fromFile[spec.name];
    const fromEnv = env[envName(spec.name)] ?? (Array.isArray(file) ? file.join(',') : typeof file === 'boolean' ? String(file) : file);
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
const CONFIG: OptionSpec = { name: 'config', kind: 'string', help: 'JSON file with a section per command, keys as flag names' };

export function helpText(command: string, summary: string, specs: readonly OptionSpec[]): string {
  const lines = [`Usage: edgeroute ${command} [options]`, '', summary, '', 'Options (each also read from its environment variable, or from the config file):'];
  for (const spec of [...specs, CONFIG, HELP]) {
    const arg = spec.kind === 'boolean' ? '' : spec.kind === 'list' ? ' A[,B...]' : ' VALUE';
    const extra = [spec.required ? 'required' : null, spec.default !== undefined ? `default ${spec.default}` : null].filter(Boolean).join(', ');
    lines.push(`  --${spec.name}${arg}`.padEnd(34) + `${spec.help}${extra ? ` (${extra})` : ''}  [${envName(spec.name)}]`);
  }
  return lines.join('\n');
}
