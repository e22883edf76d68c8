/**
 * `edgeroute.basicAuth=REALM:USER:HASH[,USER:HASH...]`: HTTP Basic
 * credentials checked per request by both data planes, as marathon-lb's
 * `HAPROXY_{n}_AUTH=realm:user:crypted-password` (an HAProxy `userlist` with
 * `user NAME password HASH`, checked by crypt(3)). Pure.
 *
 * A hash is a crypt(3) string of the three forms both planes check the same
 * way: `$6$` (SHA-512), `$5$` (SHA-256), `$1$` (MD5), as `openssl passwd
 * -6/-5/-1` or `mkpasswd` make them. nginx nodes check with libcrypt's
 * crypt_r, HAProxy nodes with SHA-crypt over HAProxy's C digests; other forms
 * (yescrypt, bcrypt, DES) have no C digest in HAProxy's Lua, so they are
 * refused rather than checked by one plane only.
 *
 * Hashes are secrets of a kind (a weak password falls to a dictionary):
 * messages never quote one, and what the agent shows (`/v1/state`, the
 * dashboard, the migration report) names the realm and the users only.
 */

export interface BasicAuth {
  readonly realm: string;
  /** User → crypt(3) hash, users sorted. */
  readonly users: Readonly<Record<string, string>>;
}

/** What may be shown of a BasicAuth: never the hashes. */
export interface BasicAuthShown {
  readonly realm: string;
  readonly users: readonly string[];
}

const MAX_USERS = 64;
const MAX_NAME_LENGTH = 128;
/**
 * The most SHA-crypt rounds accepted (libcrypt takes up to 999,999,999): a
 * new or wrong credential costs one crypt, which holds an nginx worker
 * (about 0.25 ms per 1,000 rounds here) or an HAProxy thread (about 1 ms per
 * 1,000), so a hash of a million rounds would let anyone stall a node.
 */
export const MAX_ROUNDS = 100_000;
const MIN_ROUNDS = 1000;
/** Realm: printed in `WWW-Authenticate: Basic realm="..."`, so no quote, backslash or control byte; ":" ends it. */
const REALM = /^[\x20-\x7e]*$/;
const REALM_REFUSED = /["\\:]/;
/** User: anything printable but ":" (RFC 7617) and "," (the list separator). */
const USER = /^[^\x00-\x1f\x7f:,]+$/;
const B64 = '[./0-9A-Za-z]';
const SHA_CRYPT = new RegExp(`^\\$([56])\\$(?:rounds=([1-9][0-9]{0,8})\\$)?${B64}{0,16}\\$(${B64}+)$`);
const MD5_CRYPT = new RegExp(`^\\$1\\$${B64}{0,8}\\$${B64}{22}$`);
/** Encoded digest length of SHA-crypt: 86 characters for SHA-512, 43 for SHA-256. */
const SHA_LENGTH: Readonly<Record<string, number>> = { '6': 86, '5': 43 };

/** Why a hash is not one both planes check, or null when it is. Never quotes the hash. */
export function hashProblem(hash: string): string | null {
  if (MD5_CRYPT.test(hash)) return null;
  const sha = SHA_CRYPT.exec(hash);
  if (sha) {
    const [, kind = '', rounds, digest = ''] = sha;
    if (digest.length !== SHA_LENGTH[kind]) return `is not a whole $${kind}$ hash (its digest should have ${SHA_LENGTH[kind]} characters)`;
    if (rounds !== undefined && (Number(rounds) < MIN_ROUNDS || Number(rounds) > MAX_ROUNDS)) {
      return `has rounds=${rounds}: edgeroute takes ${MIN_ROUNDS} to ${MAX_ROUNDS} (each new or wrong password costs one crypt of that many rounds)`;
    }
    return null;
  }
  return 'is not a $6$ (SHA-512), $5$ (SHA-256) or $1$ (MD5) crypt(3) hash: make one with openssl passwd -6';
}

/**
 * Reads REALM:USER:HASH[,USER:HASH...]. Returns the setting, or why not
 * (a sentence to follow the label's name, never quoting a hash).
 */
export function parseBasicAuth(raw: string): BasicAuth | string {
  const text = raw.trim();
  const colon = text.indexOf(':');
  if (colon < 0) return 'is not REALM:USER:HASH[,USER:HASH...]';
  const realm = text.slice(0, colon);
  if (realm.length > MAX_NAME_LENGTH || !REALM.test(realm) || REALM_REFUSED.test(realm)) {
    return `has the realm ${JSON.stringify(realm)}: at most ${MAX_NAME_LENGTH} printable characters, no quote, backslash or colon`;
  }
  const entries = text.slice(colon + 1).split(',').map((e) => e.trim());
  if (entries.length > MAX_USERS) return `has more than ${MAX_USERS} users`;
  const users = new Map<string, string>();
  for (const [i, entry] of entries.entries()) {
    const fields = entry.split(':');
    const n = i + 1;
    if (fields.length !== 2) return `has ${fields.length} field(s) in its user entry ${n}, not USER:HASH (REALM:USER:HASH in all)`;
    const [user = '', hash = ''] = fields;
    if (user === '') return `has an empty user in its user entry ${n}`;
    if (user.length > MAX_NAME_LENGTH || !USER.test(user)) return `has the user ${JSON.stringify(user)}: at most ${MAX_NAME_LENGTH} printable characters`;
    if (users.has(user)) return `names the user ${JSON.stringify(user)} twice`;
    const problem = hashProblem(hash);
    if (problem !== null) return `has a password hash for user ${JSON.stringify(user)} that ${problem}`;
    users.set(user, hash);
  }
  return { realm, users: Object.fromEntries([...users].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}

export function shownBasicAuth(auth: BasicAuth): BasicAuthShown {
  return { realm: auth.realm, users: Object.keys(auth.users) };
}

/** The words the migration report uses for it. */
export function describeBasicAuth(auth: BasicAuth): string {
  return `basic auth, realm ${JSON.stringify(auth.realm)}, user${Object.keys(auth.users).length === 1 ? '' : 's'} ${Object.keys(auth.users).join(', ')}`;
}
