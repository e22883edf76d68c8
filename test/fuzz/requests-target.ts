/**
 * Fuzzed client requests through nginx's public listener. Every request gets
 * a proper HTTP answer (or, for an HTTP/0.9 request, a body): never a
 * connection closed with nothing, as a crashed worker leaves. Requests that
 * reach a backend (the `/headers` echo of the simulator's task servers) show
 * what nginx sent it: X-Edgeroute-Version exactly once, the version nginx
 * chose, whatever the client sent.
 *
 * Path routing (issue 13): a third of the cases ask for the host several
 * apps share by path prefix (path-oracle.ts) with a crafted path, on both
 * nginx nodes: the agent's (the apps deployed in the simulator with their
 * labels; X-Task-Id tells the app) and the push target's (the same table
 * pushed directly, with backends that echo the request target they got).
 * nginx's normalized URI is computed here; the app must be the one whose
 * prefix is the longest to match it at a "/" boundary, a ".." above the root
 * or a bad escape must be a 400, and the backend must get the normalized
 * path (less the prefix with stripPath) whenever the written one could
 * differ, never a ".." segment, "%2e" or "%2f".
 */
import { connect } from 'node:net';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { predictPathRequest, PATH_APPS, receivedPathProblem } from './path-oracle.js';
import { readPathEcho, startPathTable } from './path-table.js';
import { generatePathCase, generateRequestCase, HEADER_BUFFER_BYTES } from './request-cases.js';
import { Rng } from './prng.js';
import { NginxWatch, type FuzzRig, type RigTargetRun } from './rig.js';
import { CaseBook, caseIndices, type FuzzSummary } from './summary.js';

export interface RequestFuzzOptions extends RigTargetRun {
  /** The X-Fuzz-Mark value the policy in force sends to grey (the policies target leaves one). */
  readonly mark?: string;
}

/** Statuses nginx or the plugin may answer a strange request with. 494 is nginx's own code for a header too large (sent as 400). */
const PROPER_STATUSES = new Set([200, 400, 404, 405, 408, 411, 413, 414, 431, 494, 501, 503, 505]);
const ANSWER_TIMEOUT_MS = 10_000;

interface RawAnswer {
  /** null: no status line (an HTTP/0.9 answer, or nothing at all). */
  readonly status: number | null;
  readonly headers: ReadonlyMap<string, string[]>;
  readonly body: Buffer;
  /** Bytes received in all. */
  readonly received: number;
  readonly timedOut: boolean;
  readonly error: string | null;
}

/**
 * Sends `bytes` and reads one answer: until the connection closes, or the
 * answer's Content-Length or final chunk is in (a request that kept the
 * connection alive), or the timeout.
 */
export function rawExchange(port: number, bytes: Buffer, timeoutMs = ANSWER_TIMEOUT_MS, headOnly = false): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let error: string | null = null;
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(Buffer.concat(chunks)), received: chunks.reduce((n, c) => n + c.length, 0), timedOut, error });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (answerComplete(Buffer.concat(chunks), headOnly)) finish(false);
    });
    // nginx may answer and close before it read the whole request: a reset after an answer is fine.
    socket.on('error', (err) => {
      error = err.message;
      finish(false);
    });
    socket.on('close', () => finish(false));
  });
}

function headEnd(data: Buffer): number {
  return data.indexOf('\r\n\r\n');
}

function answerComplete(data: Buffer, headOnly: boolean): boolean {
  const end = headEnd(data);
  if (end < 0 || !data.subarray(0, 5).equals(Buffer.from('HTTP/'))) return false;
  if (headOnly) return true;
  const { headers } = parseAnswer(data);
  const body = data.subarray(end + 4);
  const length = headers.get('content-length')?.[0];
  if (length !== undefined) return body.length >= Number(length);
  if ((headers.get('transfer-encoding')?.[0] ?? '').includes('chunked')) return body.includes('\r\n0\r\n\r\n') || body.subarray(0, 5).equals(Buffer.from('0\r\n\r\n'));
  return false;
}

function parseAnswer(data: Buffer): { status: number | null; headers: Map<string, string[]>; body: Buffer } {
  const headers = new Map<string, string[]>();
  const statusLine = /^HTTP\/\d\.\d (\d{3})/.exec(data.subarray(0, 16).toString('latin1'));
  if (!statusLine) return { status: null, headers, body: data };
  const end = headEnd(data);
  const head = data.subarray(0, end < 0 ? data.length : end).toString('latin1').split('\r\n');
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: Number(statusLine[1]), headers, body: end < 0 ? Buffer.alloc(0) : data.subarray(end + 4) };
}

/** The body of a chunked answer, joined. */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export async function fuzzRequests(opts: RequestFuzzOptions): Promise<FuzzSummary> {
  const book = new CaseBook('requests', opts.seed, opts.log);
  const { rig } = opts;
  const nginx = rig.node.nginx;
  const port = Number(new URL(nginx.publicUrl).port);
  const watch = new NginxWatch(nginx);
  const versionOfTask = new Map<string, string>([
    ...rig.good.taskIds.map((id) => [id, 'stable'] as const),
    ...rig.shop.stableIds.map((id) => [id, 'stable'] as const),
    ...rig.shop.greyIds.map((id) => [id, 'grey'] as const),
  ]);

  const hostOfTask = new Map<string, string>([
    ...rig.good.taskIds.map((id) => [id, rig.good.host] as const),
    ...rig.shop.stableIds.map((id) => [id, rig.shop.host] as const),
    ...rig.shop.greyIds.map((id) => [id, rig.shop.host] as const),
  ]);

  const pushWatch = new NginxWatch(rig.pushNginx);
  const pathTable = await startPathTable(rig.pushNginx);
  try {
    await waitForPathApps(rig);
  } catch (err) {
    await pathTable.stop();
    throw err;
  }
  try {
    for (const index of caseIndices(opts.cases, opts.only)) {
      const rng = Rng.forCase(opts.seed, 'requests', index);
      if (rng.chance(0.3)) {
        await pathCase(rng, index, rig, book);
        if (index % 20 === 0) for (const problem of [...watch.check(), ...pushWatch.check()]) book.fail(index, problem, '', [], true);
        continue;
      }
      const request = generateRequestCase(rng, { good: rig.good.host, shop: rig.shop.host }, opts.mark ?? 'no-mark');
      const fail = (reason: string, crash = false) => book.fail(index, reason, request.bytes, request.notes, crash);
      const answer = await book.timedAsync(index, () => rawExchange(port, request.bytes, ANSWER_TIMEOUT_MS, request.head));
      if (answer.timedOut && answer.received === 0) {
        fail(`no answer within ${ANSWER_TIMEOUT_MS} ms`);
        continue;
      }
      if (answer.status === null) {
        // An HTTP/0.9 request gets a bare body; anything else with no status line lost its answer.
        if (answer.received > 0 && request.notes.includes('version null')) {
          book.count('HTTP/0.9 answer');
          book.rejected++;
        } else fail(`the connection ended with ${answer.received} bytes and no status line${answer.error ? ` (${answer.error})` : ''}`, answer.received === 0);
        continue;
      }
      book.count(`HTTP ${answer.status}`);
      if (!PROPER_STATUSES.has(answer.status)) fail(`answered HTTP ${answer.status}`, answer.status >= 500 && answer.status !== 501 && answer.status !== 503 && answer.status !== 505);
      if (answer.status === 200) book.accepted++;
      else book.rejected++;

      const taskId = answer.headers.get('x-task-id')?.[0];
      // Only /headers echoes (nginx passes "/headers/../headers" on as the client wrote it).
      const echoed = (answer.headers.get('content-type')?.[0] ?? '').startsWith('application/json');
      if (answer.status === 200 && taskId !== undefined && request.echo && echoed) {
        const chosen = versionOfTask.get(taskId);
        const body = (answer.headers.get('transfer-encoding')?.[0] ?? '').includes('chunked') ? dechunk(answer.body) : answer.body;
        let raw: string[];
        try {
          raw = (JSON.parse(body.toString('utf8')) as { headers: string[] }).headers;
        } catch {
          fail(`the header echo is not JSON: ${body.toString('latin1').slice(0, 100)}`);
          continue;
        }
        const sent: string[] = [];
        const hosts: string[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i]!.toLowerCase();
          if (name === 'x-edgeroute-version') sent.push(raw[i + 1]!);
          if (name === 'host') hosts.push(raw[i + 1]!);
        }
        // The backend must be told the host nginx routed by, even when the request line named it.
        const routedHost = hostOfTask.get(taskId);
        if (hosts.length !== 1 || hosts[0]!.toLowerCase().replace(/\.?(:\d*)?$/, '') !== routedHost) {
          fail(`the backend of ${routedHost} received Host ${JSON.stringify(hosts.map((h) => h.slice(0, 40)))}`);
        } else book.count('echoed: Host names the routed app');
        if (chosen === undefined) fail(`answered by an unknown task ${taskId}`);
        else if (sent.length !== 1 || sent[0] !== chosen) {
          fail(`the backend received X-Edgeroute-Version ${JSON.stringify(sent.map((v) => v.slice(0, 40)))}, not just "${chosen}" (client sent ${JSON.stringify(request.spoofedVersions.map((v) => v.slice(0, 40)))})`);
        } else {
          book.count('echoed: X-Edgeroute-Version as nginx chose it');
          if (request.spoofedVersions.length > 0) book.count('echoed: a spoofed X-Edgeroute-Version overwritten');
        }
        const told = answer.headers.get('x-edgeroute-version');
        if (told !== undefined && (told.length !== 1 || told[0] !== chosen)) fail(`the client was told version ${JSON.stringify(told)}, the backend got "${chosen}"`);
      }
      if (index % 20 === 0) for (const problem of watch.check()) fail(problem, true);
    }
  } finally {
    await pathTable.stop();
  }
  for (const problem of [...watch.check(), ...pushWatch.check()]) book.fail(-1, problem, '', [], true);
  return book.summary(opts.only?.length ?? opts.cases);
}

/** Until every path app answers on its first prefix through the agent's node (the agent pushed them all). */
async function waitForPathApps(rig: FuzzRig): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (const app of PATH_APPS) {
    const path = app.prefixes[0] === '/' ? '/' : `${app.prefixes[0]}/x`;
    for (;;) {
      const reply = await httpGet(`${rig.node.nginx.publicUrl}${path}`, { host: rig.paths.host, timeoutMs: 5_000 }).catch(() => null);
      if (reply?.status === 200 && (rig.paths.taskIds.get(app.id) ?? []).includes(reply.body)) break;
      if (Date.now() > deadline) throw new Error(`${rig.paths.host}${path} is not served by ${app.id}: ${reply?.status} ${reply?.body.slice(0, 100)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The body of an answer, dechunked when it was chunked. */
function bodyOf(answer: RawAnswer): Buffer {
  return (answer.headers.get('transfer-encoding')?.[0] ?? '').includes('chunked') ? dechunk(answer.body) : answer.body;
}

/** One crafted path on the shared host, through both nginx nodes. */
async function pathCase(rng: Rng, index: number, rig: FuzzRig, book: CaseBook): Promise<void> {
  const request = generatePathCase(rng, rig.paths.host);
  const fail = (reason: string, crash = false) => book.fail(index, reason, request.bytes, request.notes, crash);
  const prediction = predictPathRequest(request.target);
  // A request line past one header buffer is nginx's 414 (or 400) before any routing.
  const tooLong = request.target.length > HEADER_BUFFER_BYTES - 100;
  const nodes = [
    { name: 'agent node', port: Number(new URL(rig.node.nginx.publicUrl).port) },
    { name: 'push node', port: Number(new URL(rig.pushNginx.publicUrl).port) },
  ];
  const answers = await book.timedAsync(index, () => Promise.all(nodes.map((node) => rawExchange(node.port, request.bytes, ANSWER_TIMEOUT_MS, request.head))));
  book.count(prediction.status === 400 ? 'paths: nginx refuses the path (400)' : `paths: routed to ${prediction.app.id}`);
  for (const [i, node] of nodes.entries()) {
    const answer = answers[i]!;
    const where = `${node.name}: ${JSON.stringify(request.target.slice(0, 100))}`;
    if (answer.status === null) {
      fail(`${where}: no answer (${answer.received} bytes${answer.error ? `, ${answer.error}` : ''}${answer.timedOut ? ', timed out' : ''})`, answer.received === 0);
      continue;
    }
    if (i === 0) {
      if (answer.status === 200) book.accepted++;
      else book.rejected++;
    }
    if (tooLong) {
      if (![200, 400, 414].includes(answer.status)) fail(`${where}: a long request line answered ${answer.status}`, answer.status >= 500);
      if (answer.status !== 200) continue;
    }
    if (prediction.status === 400) {
      if (answer.status !== 400) fail(`${where}: answered ${answer.status}, but nginx's normalization refuses it (${prediction.reason})`, answer.status >= 500);
      continue;
    }
    if (i === 0 && answer.status === 400 && !bodyOf(answer).includes('<html>')) {
      // The simulator's task servers (Node) refuse raw bytes above 0x7f that nginx forwards as written.
      book.count('paths: the agent node\'s backend refused the target (400)');
      continue;
    }
    if (answer.status !== 200) {
      fail(`${where}: answered ${answer.status}${answer.status >= 500 ? ` ${bodyOf(answer).toString('latin1').slice(0, 120)}` : ''}; expected ${prediction.app.id} (normalized ${JSON.stringify(prediction.uri.slice(0, 100))})`, answer.status >= 500);
      continue;
    }
    if (i === 0) {
      const taskId = answer.headers.get('x-task-id')?.[0];
      const expected = rig.paths.taskIds.get(prediction.app.id) ?? [];
      if (taskId === undefined || !expected.includes(taskId)) {
        const actual = [...rig.paths.taskIds].find(([, ids]) => taskId !== undefined && ids.includes(taskId))?.[0];
        fail(`${where}: served by ${actual ?? taskId ?? 'no task'}, expected ${prediction.app.id} (normalized ${JSON.stringify(prediction.uri.slice(0, 100))}, prefix ${prediction.prefix})`);
      }
      continue;
    }
    const app = answer.headers.get('x-path-app')?.[0];
    if (app !== prediction.app.id) {
      fail(`${where}: served by ${app ?? 'no path app'}, expected ${prediction.app.id} (normalized ${JSON.stringify(prediction.uri.slice(0, 100))}, prefix ${prediction.prefix})`);
      continue;
    }
    if (request.head) continue;
    const echo = readPathEcho(bodyOf(answer));
    if (echo === null) {
      fail(`${where}: the echo is not JSON: ${bodyOf(answer).toString('latin1').slice(0, 100)}`);
      continue;
    }
    const problem = receivedPathProblem(prediction, request.target, echo.url);
    if (problem) fail(`${where}: ${problem}`);
    else book.count('paths: the backend got the normalized path');
  }
}
