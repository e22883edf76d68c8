// What the agent writes into rules.map for HAProxy's Lua action
// (test/lua-haproxy/haproxy_spec.lua reads the same shapes on the Lua side).
import { describe, expect, it } from 'vitest';
import type { AppRoute } from '../../agent/core/routing-table.js';
import {
  appRecord,
  appRecordBackends,
  encodePart,
  LUA_TARGET,
  luaPlan,
  needsLua,
  policyRecord,
  readRecords,
  recordEntries,
  regionsRecord,
  serverTimeoutMs,
} from '../../agent/dataplane/haproxy/lua-records.js';

const route = (id: string, extra: Partial<AppRoute> = {}): AppRoute => ({
  id,
  vhosts: ['web.test'],
  defaultVersion: 'stable',
  versions: { stable: { marathonAppId: id, backends: [] } },
  hash: 'h',
  ...extra,
});
const grey = { stable: { marathonAppId: '/shop', backends: [] }, grey: { marathonAppId: '/shop-grey', backends: [] } };

describe('which apps need the Lua action', () => {
  it('is paths, several versions and the settings it applies (sticky reads the cookie), not leastconn', () => {
    expect(needsLua(route('/a'))).toBe(false);
    expect(needsLua(route('/a', { paths: { 'web.test': ['/'] } }))).toBe(false);
    expect(needsLua(route('/a', { settings: { balance: 'leastconn', connectTimeout: 2 } }))).toBe(false);
    expect(needsLua(route('/a', { settings: { sticky: 's' } }))).toBe(true);
    expect(needsLua(route('/a', { paths: { 'web.test': ['/api'] } }))).toBe(true);
    expect(needsLua(route('/a', { versions: grey }))).toBe(true);
    for (const settings of [{ stripPath: true }, { redirectHttps: true }, { redirectRoot: '/x' }, { hsts: true }, { maxBodySize: 10 }, { allowFrom: ['10.0.0.0/8'] }, { readTimeout: 3 }, { basicAuth: { realm: 'r', users: { u: '$1$s$h' } } }] as const) {
      expect(needsLua(route('/a', { settings }))).toBe(true);
    }
  });

  it('sets the server timeout to the larger of read and send, in ms', () => {
    expect(serverTimeoutMs(undefined)).toBeNull();
    expect(serverTimeoutMs({ readTimeout: 1.5 })).toBe(1500);
    expect(serverTimeoutMs({ readTimeout: 1.5, sendTimeout: 3 })).toBe(3000);
    expect(serverTimeoutMs({ sendTimeout: 0.0001 })).toBe(1);
  });
});

describe('the plan', () => {
  const backends = new Map<string, Map<string, string>>([
    ['/web', new Map([['stable', 'pool-1']])],
    ['/api', new Map([['stable', 'pool-2']])],
    ['/shop', new Map([['stable', 'pool-3'], ['grey', 'pool-4']])],
    ['/plain', new Map([['stable', 'pool-5']])],
  ]);
  const routes = new Map<string, AppRoute>([
    ['/web', route('/web', { vhosts: ['shop.test'] })],
    ['/api', route('/api', { vhosts: ['shop.test'], paths: { 'shop.test': ['/api'] }, settings: { stripPath: true, allowFrom: ['10.0.0.0/8'] } })],
    ['/shop', route('/shop', { vhosts: ['grey.test', '*.grey.test'], versions: grey })],
    ['/plain', route('/plain', { vhosts: ['plain.test', 'PLAIN2.test'] })],
    ['/waiting', route('/waiting', { vhosts: ['waiting.test'] })],
  ]);
  const plan = luaPlan(routes, (app) => backends.get(app), (app) => (app === '/shop' ? 'd=stable|s=|r=grey|c=grey:v:1' : null));

  it('keeps hosts of one simple app on the C path, sends the others to Lua', () => {
    expect(plan.hosts).toEqual(
      new Map([
        ['shop.test', LUA_TARGET],
        ['grey.test', LUA_TARGET],
        ['plain.test', 'pool-5'],
        ['plain2.test', 'pool-5'],
      ]),
    );
  });

  it('writes site, app and policy records for the Lua hosts only', () => {
    expect(plan.rules).toEqual(
      new Map([
        ['h:shop.test', 'p=%2Fapi:%2Fapi,%2F:%2Fweb'],
        ['h:grey.test', 'p=%2F:%2Fshop'],
        ['h:*.grey.test', 'p=%2F:%2Fshop'],
        ['a:%2Fapi', 'd=stable|v=stable:pool-2|s=1|f=10.0.0.0%2F8'],
        ['a:%2Fshop', 'd=stable|v=stable:pool-3,grey:pool-4'],
        ['p:%2Fshop', 'd=stable|s=|r=grey|c=grey:v:1'],
        ['a:%2Fweb', 'd=stable|v=stable:pool-1'],
      ]),
    );
    expect(appRecordBackends(plan.rules.get('a:%2Fshop')!)).toEqual(new Map([['stable', 'pool-3'], ['grey', 'pool-4']]));
  });

  it('sends a wildcard vhost to Lua through wildcards.map, by its suffix', () => {
    expect(plan.wildcards).toEqual(new Map([['.grey.test', LUA_TARGET]]));
    const solo = luaPlan(new Map([['/w', route('/w', { vhosts: ['*.w.test', 'w.test'] })]]), () => new Map([['stable', 'pool-9']]), () => null);
    expect(solo.hosts).toEqual(new Map([['w.test', 'pool-9']]));
    expect(solo.wildcards).toEqual(new Map([['.w.test', LUA_TARGET]]));
    expect(solo.rules).toEqual(new Map([['h:*.w.test', 'p=%2F:%2Fw'], ['a:%2Fw', 'd=stable|v=stable:pool-9']]));
  });
});

describe('app records', () => {
  it('carry basic auth as realm and users with their hashes, percent-encoded (the Lua action checks them)', () => {
    const text = appRecord(route('/ops', { settings: { basicAuth: { realm: 'Grafana (ops)', users: { admin: '$6$salt$abc', 'b,o:b': '$1$s$d' } } } }), new Map([['stable', 'pool-5']]));
    expect(text).toBe('d=stable|v=stable:pool-5|b=Grafana%20%28ops%29|u=admin:%246%24salt%24abc,b%2Co%3Ab:%241%24s%24d');
  });
});

describe('policy records', () => {
  it('encode every matcher, with separators and CLI-special characters escaped', () => {
    const text = policyRecord({
      default: 'stable',
      seed: 'seed; x',
      rules: [
        { match: { cookie: { name: 'grey', values: ['1', 'a,b'] } }, version: 'grey' },
        { match: { device: { patterns: ['iPhone OS 1[78]_'] }, ip: ['10.0.0.0/8'] }, version: 'grey' },
        { match: { device: { header: 'X-Device-Model', pattern: '^MI \\d' } }, version: 'grey' },
        { match: { header: { name: 'X-Canary', values: ['always'] }, arg: { name: 'ab', values: ['b'] } }, version: 'grey' },
        { match: { percentage: { value: 12.5, by: 'cookie:uid' } }, version: 'grey' },
        { match: { percentage: { value: 5, by: 'ip' } }, version: 'grey' },
        { match: { region: ['north'] }, version: 'grey' },
      ],
    });
    expect(text.split('|')).toEqual([
      'd=stable',
      's=seed%3B%20x',
      'r=grey',
      'c=grey:v:1:a%2Cb',
      'r=grey',
      'h=User-Agent:x:iPhone%20OS%201%5B78%5D_',
      'i=10.0.0.0%2F8',
      'r=grey',
      'h=X-Device-Model:x:%5EMI%20%5Cd',
      'r=grey',
      'h=X-Canary:v:always',
      'a=ab:v:b',
      'r=grey',
      'q=1250:c:uid',
      'r=grey',
      'q=500:i:',
      'r=grey',
      'g=north',
    ]);
    expect(text).not.toMatch(/[\s;\\]/);
  });

  it('escapes what encodeURIComponent leaves', () => {
    expect(encodePart("a!'()*~.-_")).toBe('a%21%27%28%29%2A~.-_');
  });
});

describe('the regions record', () => {
  it('lists the CIDR→region table most specific first, encoded', () => {
    expect(regionsRecord([['10.0.0.0/8', 'north'], ['10.1.0.0/16', 'south east'], ['2001:db8::/32', 'v6'], ['192.0.2.1', 'one']])).toBe(
      'e=192.0.2.1:one,2001%3Adb8%3A%3A%2F32:v6,10.1.0.0%2F16:south%20east,10.0.0.0%2F8:north',
    );
  });
});

describe('long records', () => {
  it('are split into parts and read back whole', () => {
    const text = `f=${'x'.repeat(9000)}`;
    const entries = recordEntries('a:%2Fbig', text, 4000);
    expect(entries.map(([k, v]) => [k, v.length])).toEqual([
      ['a:%2Fbig', 2],
      ['a:%2Fbig#1', 4000],
      ['a:%2Fbig#2', 4000],
      ['a:%2Fbig#3', 1002],
    ]);
    expect(entries[0]![1]).toBe('#3');
    expect(readRecords(new Map([...entries, ['v', '1']]))).toEqual(new Map([['a:%2Fbig', text], ['v', '1']]));
    expect(recordEntries('a:x', 'short')).toEqual([['a:x', 'short']]);
  });
});
