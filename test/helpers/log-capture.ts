/** A pino logger whose JSON lines the test can read. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface CapturedLog {
  readonly log: Logger;
  lines(): Array<Record<string, unknown>>;
  has(predicate: (line: Record<string, unknown>) => boolean): boolean;
}

export function captureLog(level = 'debug'): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text.trim()) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level }, sink);
  return { log, lines: () => lines, has: (predicate) => lines.some(predicate) };
}
