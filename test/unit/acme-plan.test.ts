// ACME's pure decisions: the names of labelled apps, renewal at two thirds of
// a certificate's lifetime, which names to order now, the retry backoff, and
// the label itself.
import { describe, expect, it } from 'vitest';
import { acmeNames, coveredBy, namesToOrder, renewalAt, retryDelayMs } from '../../agent/core/acme-plan.js';
import { readRoutingLabels } from '../../agent/core/labels.js';
import type { AppRoute, RoutingTable } from '../../agent/core/routing-table.js';

const DAY = 86_400_000;

function app(id: string, vhosts: string[], marathonAppIds: string[]): AppRoute {
  return {
    id,
    vhosts,
    defaultVersion: 'stable',
    versions: Object.fromEntries(marathonAppIds.map((marathonAppId, i) => [i === 0 ? 'stable' : `v${i}`, { marathonAppId, backends: [] }])),
    hash: id,
  };
}

describe('acmeNames', () => {
  const table: RoutingTable = {
    version: 't',
    apps: {
      shop: app('shop', ['shop.example.com', 'www.shop.example.com', '*.shop.example.com'], ['/shop']),
      // A split app: the label on any of its versions counts.
      api: app('api', ['api.example.com'], ['/api-blue', '/api-green']),
      plain: app('plain', ['plain.example.com'], ['/plain']),
      off: app('off', ['off.example.com'], ['/off']),
      tcp: app('tcp', [], ['/tcp']),
    },
  };
  const labels: Record<string, Record<string, string>> = {
    '/shop': { 'edgeroute.acme': 'true' },
    '/api-blue': {},
    '/api-green': { 'edgeroute.acme': 'TRUE' },
    '/plain': {},
    '/off': { 'edgeroute.acme': 'false' },
    '/tcp': { 'edgeroute.acme': 'true' },
  };

  it('takes the exact vhosts of labelled apps, sorted, and leaves wildcards out (they need DNS-01)', () => {
    expect(acmeNames(table, (id) => labels[id] ?? null)).toEqual(['api.example.com', 'shop.example.com', 'www.shop.example.com']);
  });

  it('has no names without a table or labels', () => {
    expect(acmeNames(null, () => null)).toEqual([]);
    expect(acmeNames(table, () => null)).toEqual([]);
  });
});

describe('renewalAt', () => {
  it('is two thirds into the lifetime', () => {
    expect(renewalAt({ notBefore: 0, notAfter: 90 * DAY })).toBe(60 * DAY);
    expect(renewalAt({ notBefore: 1_000, notAfter: 25_000 })).toBe(17_000);
  });
});

describe('namesToOrder', () => {
  const now = 100 * DAY;
  const base = { names: ['fresh.test', 'due.test', 'none.test', 'waiting.test', 'retry.test', 'manual.test', 'x.wild.test'], manual: new Set(['manual.test', '*.wild.test']), now };
  const stored = new Map([
    ['fresh.test', { notBefore: now - DAY, notAfter: now + 89 * DAY }],
    ['due.test', { notBefore: now - 61 * DAY, notAfter: now + 29 * DAY }],
  ]);

  it('orders names without a certificate and those due for renewal, not those a --certs certificate serves', () => {
    expect(namesToOrder({ ...base, stored, retryAt: new Map() })).toEqual(['due.test', 'none.test', 'waiting.test', 'retry.test']);
  });

  it('leaves a failed name alone until its retry time', () => {
    const retryAt = new Map([
      ['waiting.test', now + 1],
      ['retry.test', now],
    ]);
    expect(namesToOrder({ ...base, stored, retryAt })).toEqual(['due.test', 'none.test', 'retry.test']);
  });
});

describe('coveredBy', () => {
  it('matches the exact name or the wildcard of its parent, as SNI lookup does', () => {
    const served = new Set(['a.test', '*.wild.test']);
    expect(coveredBy('a.test', served)).toBe(true);
    expect(coveredBy('x.wild.test', served)).toBe(true);
    expect(coveredBy('wild.test', served)).toBe(false);
    expect(coveredBy('y.x.wild.test', served)).toBe(false);
  });
});

describe('retryDelayMs', () => {
  it('doubles from the first delay up to the cap', () => {
    expect([1, 2, 3, 4, 10, 100].map((failures) => retryDelayMs(failures, 60_000, 3_600_000))).toEqual([60_000, 120_000, 240_000, 480_000, 3_600_000, 3_600_000]);
  });
});

describe('edgeroute.acme', () => {
  it('is read as true or false; any other value skips the app with a message naming the label', () => {
    const read = (value: string) => readRoutingLabels({ 'edgeroute.vhosts': 'a.test', 'edgeroute.acme': value });
    expect(read('true')).toMatchObject({ ok: true, value: { acme: true } });
    const off = read('False');
    expect(off.ok && off.routed && 'acme' in off.value).toBe(false);
    expect(read('yes')).toEqual({ ok: false, message: 'edgeroute.acme="yes" is not true or false' });
  });
});
