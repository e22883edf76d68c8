import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { sendMessage } from './http-replies.js';

/**
 * What a Marathon standby does with requests it does not answer itself, after Marathon's
 * LeaderProxyFilter / JavaUrlConnectionRequestForwarder (1.7+ for the `/v2/events` redirect).
 */

export const NO_LEADER_MESSAGE = 'Could not determine the current leader';

/** Headers that describe one hop, not the message. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

/** 302 to `<leader>/v2/events` with the original query string: Marathon ≥ 1.7 standbys do not proxy events. */
export function redirectEventsToLeader(req: IncomingMessage, res: ServerResponse, leaderUrl: string): void {
  const raw = req.url ?? '/';
  const queryAt = raw.indexOf('?');
  const location = `${leaderUrl}/v2/events${queryAt >= 0 ? raw.slice(queryAt) : ''}`;
  req.resume();
  res.writeHead(302, { Location: location, 'Content-Length': 0 });
  res.end();
}

/**
 * Forwards the request to the leader and copies the answer back, adding `X-Marathon-Via: 1.1 <self>`
 * both ways and `X-Forwarded-For` upstream, as Marathon does. A proxy loop answers 502
 * "Detected proxying loop."; an unreachable leader 502 "Connection to leader refused.".
 */
export function proxyToLeader(req: IncomingMessage, res: ServerResponse, leaderUrl: string, selfHostPort: string): void {
  const via = `1.1 ${selfHostPort}`;
  const incomingVia = headerList(req.headers['x-marathon-via']);
  if (incomingVia.includes(via)) {
    req.resume();
    return sendMessage(res, 502, 'Detected proxying loop.');
  }
  const target = new URL(req.url ?? '/', leaderUrl);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'host' || HOP_BY_HOP.has(name)) continue;
    headers[name] = value;
  }
  headers['x-marathon-via'] = [...incomingVia, via];
  headers['x-forwarded-for'] = [...headerList(req.headers['x-forwarded-for']), req.socket.remoteAddress ?? 'unknown'].join(',');

  const onResponse = (upstream: IncomingMessage): void => {
    const copied: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) copied[name] = value;
    }
    copied['x-marathon-via'] = via;
    res.writeHead(upstream.statusCode ?? 502, copied);
    upstream.pipe(res);
    upstream.on('error', () => res.destroy());
  };
  const method = req.method ?? 'GET';
  const forward =
    target.protocol === 'https:'
      ? // The hop between instances trusts any certificate, like leader_proxy_ssl_ignore_hostname.
        httpsRequest(target, { method, headers, agent: false, rejectUnauthorized: false }, onResponse)
      : httpRequest(target, { method, headers, agent: false }, onResponse);
  forward.on('error', () => {
    if (!res.headersSent) sendMessage(res, 502, 'Connection to leader refused.');
    else res.destroy();
  });
  // A client that hangs up mid-request takes the upstream request with it.
  res.on('close', () => {
    if (!res.writableFinished) forward.destroy();
  });
  req.pipe(forward);
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((entry) => entry.split(',')).map((entry) => entry.trim()).filter((entry) => entry !== '');
}
