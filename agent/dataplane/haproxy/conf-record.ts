/**
 * What `edgeroute haproxy-conf` rendered a folder with, kept in
 * DIR/haproxy-conf.json beside haproxy.cfg: the agent (`--haproxy-conf-dir`)
 * renders the same config again with a larger pool or extra TCP listeners
 * before a reload, without the operator's flags. Only settings are recorded,
 * never what the agent changed at run time (servers, map entries), and no
 * secret (the TLS key stays in tls/default.pem, which a re-render reuses).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HaproxyConfOptions } from './render.js';
import { upstreamIdleTimeoutSeconds } from '../upstream-idle-timeout.js';

export const CONF_RECORD_FILE = 'haproxy-conf.json';
const FORMAT = 1;

/** The options that make a config, minus the state (servers) and how TLS was first read. */
type Recorded = Omit<HaproxyConfOptions, 'servers' | 'tlsCert' | 'tlsKey' | 'reuseTlsBundle'>;

export function confRecord(opts: HaproxyConfOptions): string {
  const recorded: Recorded = {
    outDir: opts.outDir,
    listen: opts.listen,
    adminSocket: opts.adminSocket ?? null,
    adminSocketGroup: opts.adminSocketGroup ?? null,
    tlsListen: opts.tlsListen ?? [],
    backendPool: opts.backendPool,
    leastconnPool: opts.leastconnPool,
    stickyPool: opts.stickyPool,
    regionHeader: opts.regionHeader ?? null,
    versionResponseHeader: opts.versionResponseHeader === true,
    requestLog: opts.requestLog === true,
    upstreamIdleTimeoutSeconds: upstreamIdleTimeoutSeconds(opts.upstreamIdleTimeoutSeconds),
    retryUnanswered: opts.retryUnanswered === true,
    tcpPorts: opts.tcpPorts ?? null,
    tcpBackendPool: opts.tcpBackendPool,
    user: opts.user ?? null,
    group: opts.group ?? null,
    websocketIdleTimeoutSeconds: opts.websocketIdleTimeoutSeconds,
    haproxy: opts.haproxy ?? null,
    extraTcpPorts: opts.extraTcpPorts ?? [],
    extraTcpBinds: opts.extraTcpBinds ?? [],
  };
  return `${JSON.stringify({ renderedBy: 'edgeroute haproxy-conf', format: FORMAT, options: recorded }, null, 2)}\n`;
}

/** The options DIR was rendered with, ready to render it again (the TLS bundle reused); throws naming the file when it cannot. */
export function readConfRecord(dir: string): HaproxyConfOptions {
  const path = join(dir, CONF_RECORD_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${path} (written by edgeroute haproxy-conf): ${(err as Error).message}`);
  }
  const record = parsed as { format?: unknown; options?: Partial<Recorded> } | null;
  const o = record?.options;
  if (record?.format !== FORMAT || typeof o !== 'object' || o === null || typeof o.outDir !== 'string' || !Array.isArray(o.listen)) {
    throw new Error(`${path} is not a record of edgeroute haproxy-conf (format ${FORMAT}): run haproxy-conf again`);
  }
  return { ...o, outDir: o.outDir, listen: o.listen, reuseTlsBundle: (o.tlsListen ?? []).length > 0 };
}
