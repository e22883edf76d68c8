/**
 * One certificate order through acme-client: HTTP-01 challenges handed to
 * the caller (who makes every routing node answer them), an ECDSA P-256
 * key and CSR for the one name, the certificate chain back. No state here:
 * the account key comes in, the account URL goes out.
 */
import * as acme from 'acme-client';
import { Agent } from 'node:https';

export interface OrderRequest {
  readonly name: string;
  readonly directory: string;
  readonly email: string;
  readonly accountKeyPem: string;
  /** The account's URL at the directory, when known: saves a registration call. */
  readonly accountUrl: string | null;
  /** The token must be answered by every routing node when this resolves. */
  publishChallenge(token: string, keyAuthorization: string): Promise<void>;
  withdrawChallenge(token: string): Promise<void>;
}

export interface OrderResult {
  readonly certPem: string;
  readonly keyPem: string;
  readonly accountUrl: string;
}

/** A CA call that hangs must not hold the name's lock for ever. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Trusts `caPem` (a private directory, as a test server) besides the system's CAs; once per process. */
export function configureAcmeHttp(caPem: string | null): void {
  acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
  if (caPem !== null) acme.axios.defaults.httpsAgent = new Agent({ ca: caPem, keepAlive: true });
}

export async function newAccountKey(): Promise<string> {
  return (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
}

export async function orderCertificate(request: OrderRequest): Promise<OrderResult> {
  const client = new acme.Client({
    directoryUrl: request.directory,
    accountKey: request.accountKeyPem,
    ...(request.accountUrl ? { accountUrl: request.accountUrl } : {}),
  });
  const key = await acme.crypto.createPrivateEcdsaKey('P-256');
  const [, csr] = await acme.crypto.createCsr({ commonName: request.name, altNames: [request.name] }, key);
  const certPem = await client.auto({
    csr,
    email: request.email,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // acme-client's own check fetches http://NAME/ from here: the CA's view is what counts.
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      if (challenge.type !== 'http-01') throw new Error(`the CA offers no http-01 challenge for ${request.name} (only ${challenge.type})`);
      await request.publishChallenge(challenge.token, keyAuthorization);
    },
    challengeRemoveFn: async (_authz, challenge) => {
      await request.withdrawChallenge(challenge.token);
    },
  });
  return { certPem, keyPem: key.toString(), accountUrl: client.getAccountUrl() };
}

/**
 * What to report of a failed order: the CA's problem detail or the
 * connection's error, on one line. acme-client's messages quote neither keys
 * nor the CSR.
 */
export function orderProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = message.replace(/\s+/g, ' ').trim();
  return (line === '' ? 'the order failed' : line).slice(0, 400);
}
