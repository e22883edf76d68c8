/** The listen addresses nginx-conf takes, written as HAProxy `bind` addresses. */
import { parseListen } from '../nginx/conf/listen-address.js';

export interface BindAddress {
  /** The text after HAProxy's `bind`. */
  readonly bind: string;
  readonly loopbackOnly: boolean;
}

/** Accepts `PORT` (every IPv4 address, as nginx's `listen PORT`), `HOST:PORT`, `[IPv6]:PORT` and `unix:/path`. */
export function parseBind(raw: string): BindAddress {
  const { directive, loopbackOnly } = parseListen(raw);
  if (directive.startsWith('unix:')) {
    const path = directive.slice('unix:'.length);
    checkCfgPath(path, raw);
    return { bind: `unix@${path}`, loopbackOnly };
  }
  return { bind: /^\d+$/.test(directive) ? `:${directive}` : directive, loopbackOnly };
}

/**
 * HAProxy's config splits words at spaces and reads `#`, quotes and `\` as
 * syntax: rather than quote paths, refuse those that would need it.
 */
export function checkCfgPath(path: string, what: string): string {
  if (path === '' || !/^[A-Za-z0-9_@.,+/:=~-]+$/.test(path)) {
    throw new Error(`cannot write the path ${JSON.stringify(path)} (${what}) into haproxy.cfg: it is empty or holds a space or a special character`);
  }
  return path;
}
