/**
 * For tests and benchmarks that push straight to the plugin: the worker that
 * took a push routes by it at once, the others within a sync interval, so a
 * request answered by the new table proves it for one worker only.
 */
import { NginxAdmin } from '../dataplane/nginx/admin.js';
import { waitFor } from './wait.js';

/** Resolves once the plugin's /edgeroute/inflight says every worker holds `version`. */
export async function waitForWorkersOn(node: { readonly adminUrl: string; readonly adminToken: string }, version: string, timeoutMs = 10_000): Promise<void> {
  const admin = new NginxAdmin(node.adminUrl, node.adminToken, 5_000);
  await waitFor('every nginx worker on the pushed table', async () => {
    const report = await admin.inflight([]);
    return report.settled && report.version === version ? true : undefined;
  }, timeoutMs);
}
