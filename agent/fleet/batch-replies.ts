/**
 * ioredis resolves a pipeline (and a MULTI) with one [error, reply] per
 * command: a command refused or not sent (READONLY from a master demoted by
 * a failover, a connection lost halfway) does not reject the promise. A
 * write whose loss matters goes through here, so its caller sees the failure
 * and writes again rather than believing it done.
 */
import type { ChainableCommander } from 'ioredis';

/** Sends the batch; the replies in order, or the first command's error thrown. */
export async function execChecked(batch: ChainableCommander): Promise<unknown[]> {
  const results = await batch.exec();
  // null: a MULTI discarded (a WATCHed key changed); nothing was written.
  if (results === null) throw new Error('redis discarded the transaction');
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return results.map(([, reply]) => reply);
}
