import { describe, expect, it } from 'vitest';
import { describeBasicAuth, hashProblem, MAX_ROUNDS, parseBasicAuth, shownBasicAuth } from '../../agent/core/basic-auth.js';
import { readRouteLabels, shownSettings } from '../../agent/core/route-settings.js';

// Made with `openssl passwd -6 -salt Q9pCzW4eRt7Lm2Xa`, `-5 -salt abcdEFGH`, `-1 -salt abcdEFGH`.
const SHA512 = '$6$Q9pCzW4eRt7Lm2Xa$72Fqd6/pTYlKEcPSPb6GAOVwsW7.IpXc7jfk0qJ9prs1Rdr2VYgSucmQJJMhAQF1gJE0OKNWWFL91.mXdEhDM.';
const SHA256 = '$5$abcdEFGH$fKitG5RztnzQ9uwhL35ayYIG4hG5e4Ul5sw30/1vW45';
const MD5 = '$1$abcdEFGH$YwB5GTTIiGk/xvQF0MFtt.';
const WITH_ROUNDS = `$6$rounds=20000$${SHA512.slice(3)}`;

describe('parseBasicAuth', () => {
  it('reads REALM:USER:HASH and more users, sorted by name', () => {
    expect(parseBasicAuth(`ops:admin:${SHA512}`)).toEqual({ realm: 'ops', users: { admin: SHA512 } });
    expect(parseBasicAuth(` Grafana (ops):zoe:${SHA256}, admin:${MD5},bob:${WITH_ROUNDS} `)).toEqual({
      realm: 'Grafana (ops)',
      users: { admin: MD5, bob: WITH_ROUNDS, zoe: SHA256 },
    });
    // An empty realm is what marathon-lb's `realm ""` says.
    expect(parseBasicAuth(`:admin:${MD5}`)).toEqual({ realm: '', users: { admin: MD5 } });
  });

  it.each([
    ['no field at all', 'opsadmin', /^is not REALM:USER:HASH/],
    ['a missing hash', 'ops:admin', /^has 1 field\(s\) in its user entry 1, not USER:HASH/],
    ['a user without a hash', `ops:admin:${MD5},bob`, /^has 1 field\(s\) in its user entry 2/],
    ['an empty user', `ops::${MD5}`, /^has an empty user in its user entry 1/],
    ['a user twice', `ops:a:${MD5},a:${SHA256}`, /^names the user "a" twice/],
    ['a quote in the realm', `o"ps:a:${MD5}`, /^has the realm "o\\"ps": at most 128 printable characters, no quote/],
    ['a control byte in a user', `ops:a\tb:${MD5}`, /^has the user "a\\tb"/],
    ['an unknown hash form (yescrypt)', 'ops:a:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7', /^has a password hash for user "a" that is not a \$6\$ \(SHA-512\), \$5\$ \(SHA-256\) or \$1\$ \(MD5\) crypt\(3\) hash: make one with openssl passwd -6$/],
    ['DES', 'ops:a:abJnggxhB/yWI', /user "a" that is not a \$6\$/],
    ['plain text', 'ops:a:secret', /user "a" that is not a \$6\$/],
    ['a cut hash', `ops:a:${SHA512.slice(0, -1)}`, /user "a" that is not a whole \$6\$ hash \(its digest should have 86 characters\)$/],
    ['too many rounds', `ops:a:$6$rounds=${MAX_ROUNDS + 1}$${SHA512.slice(3)}`, /rounds=100001: edgeroute takes 1000 to 100000/],
    ['too few rounds', `ops:a:$5$rounds=999$${SHA256.slice(3)}`, /rounds=999: edgeroute takes 1000/],
  ])('refuses %s, never quoting the hash', (_title, raw, message) => {
    const result = parseBasicAuth(raw);
    expect(result).toMatch(message);
    for (const hash of [SHA512, SHA256, MD5, SHA512.slice(0, -1)]) expect(result).not.toContain(hash.slice(-20));
  });

  it('takes every hash form both data planes check, and nothing else', () => {
    for (const hash of [SHA512, SHA256, MD5, WITH_ROUNDS, `$6$rounds=1000$${SHA512.slice(3)}`, '$1$$abcdefghijklmnopqrstuv', `$6$$${SHA512.slice(-86)}`]) expect(hashProblem(hash)).toBeNull();
    for (const hash of ['', '$6$', '$2b$10$abcdefghijklmnopqrstuu5Oa1n7Uc0e5rJr3Tc6i6y5r9Fq0Sq7yG', `$6$a salt$${SHA512.slice(-86)}`, `$6$rounds=05000$${SHA512.slice(3)}`, `$1$abcdEFGHI$${MD5.slice(-22)}`]) {
      expect(hashProblem(hash)).not.toBeNull();
    }
  });

  it('shows the realm and the users, never a hash', () => {
    const auth = parseBasicAuth(`ops:zoe:${SHA256},admin:${MD5}`);
    if (typeof auth === 'string') throw new Error(auth);
    expect(shownBasicAuth(auth)).toEqual({ realm: 'ops', users: ['admin', 'zoe'] });
    expect(describeBasicAuth(auth)).toBe('basic auth, realm "ops", users admin, zoe');
  });
});

describe('edgeroute.basicAuth', () => {
  it('is a per-route setting; a bad value refuses the app, the message naming the label and never the hash', () => {
    expect(readRouteLabels({ 'edgeroute.basicAuth': `ops:admin:${SHA512}` })).toEqual({ ok: true, value: { paths: ['/'], settings: { basicAuth: { realm: 'ops', users: { admin: SHA512 } } } } });
    const bad = readRouteLabels({ 'edgeroute.basicAuth': `ops:admin:${SHA512.slice(0, 60)}` });
    expect(bad).toEqual({ ok: false, message: expect.stringMatching(/^edgeroute\.basicAuth has a password hash for user "admin" that is not a whole \$6\$ hash/) });
    expect(JSON.stringify(bad)).not.toContain(SHA512.slice(20, 60));
  });

  it('is shown without its hashes, the other settings as they are', () => {
    const read = readRouteLabels({ 'edgeroute.basicAuth': `ops:admin:${SHA512}`, 'edgeroute.hsts': 'true' });
    if (!read.ok || !read.value.settings) throw new Error('not read');
    const shown = shownSettings(read.value.settings);
    expect(shown).toEqual({ hsts: true, basicAuth: { realm: 'ops', users: ['admin'] } });
    expect(JSON.stringify(shown)).not.toContain('$6$');
    expect(shownSettings({ sticky: 'c' })).toEqual({ sticky: 'c' });
    expect(shownSettings(undefined)).toEqual({});
  });
});
