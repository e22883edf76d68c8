import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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

  // Seen in CI: a scan slowed by the load read a pair seconds after it began, the key already
  // replaced and the certificate not yet; the new key's time was "in the future" of the scan's
  // start, so the pair was judged (mismatched) instead of held, and stayed refused.
  it('holds a pair changed just before it was read, however long before that the scan began', async () => {
    writeFileSync(join(dir, 'slow.crt'), 'CERT');
    writeFileSync(join(dir, 'slow.key'), 'KEY');
    const scanBegan = Date.now() - 5_000;
    const [read] = await readCertPairs([pair('slow')], scanBegan, 1_000);
    expect(read?.settling).toBe(true);
  });

  it('does not hold a pair whose file time is far in the future (a skewed clock, touch -d)', async () => {
    writeFileSync(join(dir, 'ahead.crt'), 'CERT');
    writeFileSync(join(dir, 'ahead.key'), 'KEY');
    const hourAhead = new Date(Date.now() + 3_600_000);
    utimesSync(join(dir, 'ahead.crt'), hourAhead, hourAhead);
    utimesSync(join(dir, 'ahead.key'), hourAhead, hourAhead);
    const [read] = await readCertPairs([pair('ahead')], Date.now(), 1_000);
    expect(read?.settling).toBe(false);
  });
});
