/** Runs wrk (Debian's package) and reads its report. */
import { execa } from 'execa';

export interface WrkResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Milliseconds. */
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly socketErrors: number;
  readonly non2xx: number;
  /** Requests that did not get a 2xx/3xx answer, or broke. */
  readonly failed: number;
}

export interface WrkOptions {
  readonly url: string;
  readonly durationSeconds: number;
  readonly connections: number;
  readonly threads?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** A wrk Lua script (e.g. to POST). */
  readonly script?: string;
}

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(opts.threads ?? 2), '-c', String(opts.connections), '-d', `${opts.durationSeconds}s`, '--latency', '--timeout', '10s'];
  // wrk recognises its own Host header only when spelt "Host"; any other case sends two.
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${canonicalHeader(name)}: ${value}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(opts.url);
  const { stdout } = await execa('wrk', args);
  return parseWrk(stdout);
}

export function parseWrk(text: string): WrkResult {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(text);
    return match ? Number(match[1]) : 0;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  const non2xx = number(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requests: number(/(\d+) requests in/),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    latency: {
      p50: percentile(text, '50%'),
      p90: percentile(text, '90%'),
      p99: percentile(text, '99%'),
      max: durationMs(/Latency\s+\S+\s+\S+\s+(\S+)/.exec(text)?.[1] ?? '0'),
    },
    socketErrors,
    non2xx,
    failed: socketErrors + non2xx,
  };
}

function percentile(text: string, label: string): number {
  const match = new RegExp(`^\\s*${label.replace('%', '%')}\\s+(\\S+)`, 'm').exec(text.slice(text.indexOf('Latency Distribution')));
  return match ? durationMs(match[1]!) : 0;
}

function durationMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!match) return 0;
  const n = Number(match[1]);
  return match[2] === 'us' ? n / 1000 : match[2] === 'ms' ? n : match[2] === 's' ? n * 1000 : n * 60_000;
}

function canonicalHeader(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1).toLowerCase())
    .join('-');
}
