/**
 * HTTP-01 challenges on an HAProxy node: acme-challenges.map (token → key
 * authorization), which haproxy.cfg consults ahead of routing and redirects
 * (`http-request return ... lf-string "%[var(txn.edgeroute_acme)]"`). The
 * agent replaces its content through the runtime API in one step (prepare
 * map, add map @VERSION, commit map: HAProxy 2.4+), so a request sees the
 * old set or the new one, never a half; nothing is written to disk (a
 * reloaded or restarted HAProxy starts empty and the agent fills it again).
 */
import { wellFormedChallenge } from '../../acme/acme-challenge-sync.js';

export const ACME_CHALLENGES_MAP_FILE = 'acme-challenges.map';

/** The commands' sender: replies in order. */
export type SendAll = (commands: readonly string[]) => Promise<string[]>;

/** Replaces the map `file`'s entries with `challenges`; throws with HAProxy's reply when it refuses. */
export async function replaceAcmeChallengeMap(sendAll: SendAll, file: string, challenges: ReadonlyMap<string, string>): Promise<void> {
  // A map value is one word and the body a log-format: only base64url and '.' may reach them.
  for (const [token, keyAuthorization] of challenges) {
    if (!wellFormedChallenge(token, keyAuthorization)) throw new Error('a challenge is not a base64url token and key authorization');
  }
  const [prepared] = await sendAll([`prepare map ${file}`]);
  const version = /New version created: *(\d+)/i.exec(prepared ?? '')?.[1];
  if (version === undefined) throw new Error(`prepare map ${file}: ${(prepared ?? '').trim()}`);
  const adds = [...challenges].map(([token, keyAuthorization]) => `add map @${version} ${file} ${token} ${keyAuthorization}`);
  const replies = await sendAll([...adds, `commit map @${version} ${file}`]);
  const refused = replies.map((reply, i) => [i < adds.length ? 'add map' : 'commit map', reply.trim()] as const).filter(([, reply]) => reply !== '');
  if (refused.length > 0) throw new Error(`HAProxy refused ${refused.map(([what, reply]) => `${what}: ${reply}`).slice(0, 3).join('; ')}`);
}
