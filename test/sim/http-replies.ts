import type { IncomingMessage, ServerResponse } from 'node:http';

/** Small response helpers for the simulated Marathon API. */

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendRaw(res, status, JSON_CONTENT_TYPE, JSON.stringify(body), headers);
}

export function sendMessage(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { message });
}

export function sendRaw(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * A JSON body made of `parts`, written without joining them (one writev): sending 10,000 cached
 * app buffers costs no copy of the whole body.
 */
export function sendJsonParts(res: ServerResponse, status: number, parts: readonly Buffer[], headers: Record<string, string> = {}): void {
  let length = 0;
  for (const part of parts) length += part.length;
  res.writeHead(status, { ...headers, 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': length });
  res.cork();
  for (const part of parts) res.write(part);
  res.uncork();
  res.end();
}

/** Jetty's answer to `/v2/events` without `Accept: text/event-stream`. */
export function sendEventStreamNotAccepted(res: ServerResponse): void {
  const body = [
    '<html>',
    '<head>',
    '<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>',
    '<title>Error 405 </title>',
    '</head>',
    '<body>',
    '<h2>HTTP ERROR: 405</h2>',
    '<p>Problem accessing /v2/events. Reason:',
    '<pre>    HTTP method GET is not supported by this URL</pre></p>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  sendRaw(res, 405, 'text/html;charset=ISO-8859-1', body);
}

/** Reads a JSON request body; an empty body reads as `{}`. Throws on malformed JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object');
  return parsed as Record<string, unknown>;
}
