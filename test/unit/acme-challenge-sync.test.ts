import { describe, expect, it } from 'vitest';
import { wellFormedChallenge } from '../../agent/acme/acme-challenge-sync.js';

describe('wellFormedChallenge', () => {
  const token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
  const thumbprint = '9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI';

  it('takes a base64url token with its key authorization', () => {
    expect(wellFormedChallenge(token, `${token}.${thumbprint}`)).toBe(true);
  });

  it('refuses what an HAProxy map value or a log-format body would read otherwise', () => {
    for (const [t, ka] of [
      [token, `${token}.${thumbprint} extra`],
      [token, `${token}.%[env(HOME)]`],
      [token, `${token}.${thumbprint}\n`],
      [token, `${token}.`],
      [token, `other.${thumbprint}`],
      [`${token}/x`, `${token}/x.${thumbprint}`],
      ['', `.${thumbprint}`],
      [token, `${token}.${thumbprint}.more`],
    ]) {
      expect([t, ka, wellFormedChallenge(t as string, ka as string)]).toEqual([t, ka, false]);
    }
  });
});
