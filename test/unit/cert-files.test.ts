import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCertPairs } from '../../agent/certs/cert-files.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeroute-cert-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pair = (name: string) => ({ id: `${name}.crt`, certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) });

describe('readCertPairs', () => {
  it('leaves out a pair whose certificate was removed after the folder was listed, and reports one whose key is missing', async () => {
    writeFileSync(join(dir, 'kept.crt'), 'CERT');
    writeFileSync(join(dir, 'kept.key'), 'KEY');
    writeFileSync(join(dir, 'keyless.crt'), 'CERT');
    // `removed` was listed, then deleted (with its key) before it was read.
    const read = await readCertPairs([pair('kept'), pair('keyless'), pair('removed')], Date.now(), 0);
    expect(read.map((source) => [source.id, source.problem])).toEqual([
      ['kept.crt', null],
      ['keyless.crt', `cannot read ${join(dir, 'keyless.key')} (ENOENT)`],
    ]);
  });
});
