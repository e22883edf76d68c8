/**
 * Fuzzed pushes to the plugin's admin endpoint (POST /edgeroute/apps, with
 * the admin token), on an nginx no agent feeds. A refused push must get 400
 * or 409 with a message, and leave the table in force as it was; no push may
 * get a 500 or take a worker down. A push that happens to be valid is fine:
 * the table it replaced is pushed back.
 */
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { arrayNode, isObjectNode, mutateDocument, mutateNamedField, mutateText, objectNode, render, setField, TEXT_MUTATIONS, toTree, type JsonTree } from './json-tree.js';
import { Rng } from './prng.js';
import { goodAppProblem, NginxWatch, type RigTargetRun } from './rig.js';
import { CaseBook, caseIndices, type FuzzSummary } from './summary.js';

export type PushFuzzOptions = RigTargetRun;

export const PUSH_GOOD_HOST = 'good.push';
const ROUTE_FIELDS: readonly RegExp[] = [/^id$/, /^hash$/, /^vhosts$/, /^versions$/, /^backends$/, /^address$/, /^port$/, /^weight$/, /^defaultVersion$/, /^(version|base|remove)$/];

interface Backend {
  readonly taskId: string;
  readonly port: number;
}

function goodRoute(backends: readonly Backend[]): Record<string, unknown> {
  return {
    id: '/good',
    hash: 'h-good',
    vhosts: [PUSH_GOOD_HOST],
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: '/fuzz-good', backends: backends.map((b) => ({ id: b.taskId, address: '127.0.0.1', port: b.port, weight: 100 })) } },
  };
}

function otherRoute(rng: Rng, k: number): Record<string, unknown> {
  const backends = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `p${k}.task-${i}`, address: rng.pick(['127.0.0.2', '10.1.2.3', '::1', '2001:db8::7']), port: 31000 + i, weight: rng.pick([1, 100, 10_000]) }));
  return {
    id: `/p${k}`,
    hash: `h-${k}-${rng.int(1e6)}`,
    vhosts: [`p${k}.push`, `*.p${k}.push`],
    defaultVersion: 'stable',
    versions: rng.chance(0.5) ? { stable: { marathonAppId: `/p${k}`, backends: backends(rng.between(0, 3)) } } : { stable: { backends: backends(1) }, grey: { backends: backends(2) } },
  };
}

/** The push body text: header line, the good app's route, others, removals; one of them mutated. */
function generatePush(rng: Rng, good: Record<string, unknown>, currentVersion: string): { text: string; notes: string[] } {
  const base = rng.weighted<() => string | null>([
    [6, () => null],
    [2, () => currentVersion],
    [1, () => 'not-the-stored-version'],
  ])();
  const lines: JsonTree[] = [toTree({ version: `fuzz-${rng.int(1e9)}`, base }), toTree(good)];
  for (let i = rng.int(4); i > 0; i--) lines.push(toTree(otherRoute(rng, rng.int(50))));
  if (rng.chance(0.3)) lines.push(toTree({ remove: `/p${rng.int(50)}` }));
  const notes: string[] = [];
  const kind = rng.weighted<() => string>([
    [4, () => 'field'],
    [4, () => 'structure'],
    [1, () => 'text'],
    [1, () => 'special'],
  ])();
  if (kind === 'field' || kind === 'structure') {
    const at = rng.int(lines.length);
    const mutated =
      kind === 'field' ? mutateNamedField(rng, lines[at]!, rng.pick(ROUTE_FIELDS)) : null;
    if (mutated) {
      lines[at] = mutated.tree;
      notes.push(`line ${at + 1}: ${mutated.note}`);
    } else {
      const document = mutateDocument(rng, lines[at]!, { textMutationChance: 0.15, maxBytes: 256 * 1024 });
      notes.push(`line ${at + 1}: ${document.notes.join(', ')}`);
      return { text: [...lines.slice(0, at).map(render), document.text, ...lines.slice(at + 1).map(render)].join('\n') + '\n', notes };
    }
    return { text: lines.map(render).join('\n') + '\n', notes };
  }
  const text = lines.map(render).join('\n') + '\n';
  if (kind === 'text') {
    const mutated = mutateText(rng, text, rng.pick(TEXT_MUTATIONS));
    return { text: mutated.text, notes: [mutated.note] };
  }
  return rng.weighted<() => { text: string; notes: string[] }>([
    [1, () => ({ text: text.replace(/\n/g, '\r\n'), notes: ['CRLF line ends'] })],
    [1, () => ({ text: text.replace(/\n/g, '\n\n  \n'), notes: ['blank lines'] })],
    [1, () => ({ text: text.slice(0, -1), notes: ['no final newline'] })],
    [1, () => ({ text: '', notes: ['empty body'] })],
    [1, () => ({ text: '\n\n\n', notes: ['only newlines'] })],
    [
      1,
      () => {
        // Valid apart from the id's length: the shared dict refuses keys over 64 KiB.
        const long = { ...otherRoute(rng, 1), id: `/${'l'.repeat(rng.pick([4095, 4096, 70_000]))}` };
        return { text: `${render(lines[0]!)}\n${render(lines[1]!)}\n${JSON.stringify(long)}\n`, notes: [`an id of ${String(long.id).length} bytes`] };
      },
    ],
    [
      1,
      () => {
        const count = rng.pick([1_000, 10_000]);
        const many = Array.from({ length: count }, (_, i) => JSON.stringify(otherRoute(rng, 1000 + i)));
        return { text: `${render(lines[0]!)}\n${render(lines[1]!)}\n${many.join('\n')}\n`, notes: [`${count} routes`] };
      },
    ],
    [
      1,
      () => {
        const route = lines[1]!;
        if (isObjectNode(route)) setField(route, 'versions', objectNode([['stable', objectNode([['backends', arrayNode([])]])], ['', objectNode([['backends', objectNode([])]])]]));
        return { text: lines.map(render).join('\n') + '\n', notes: ['odd but valid versions'] };
      },
    ],
    [1, () => ({ text: `${render(lines[0]!)}\n${'{"remove": "/p1"}\n'.repeat(rng.pick([2, 1000]))}`, notes: ['repeated removals'] })],
  ])();
}

export async function fuzzPush(opts: PushFuzzOptions): Promise<FuzzSummary> {
  const book = new CaseBook('push', opts.seed, opts.log);
  const { rig } = opts;
  const nginx = rig.pushNginx;
  const watch = new NginxWatch(nginx);
  const backends = rig.marathon.tasks(rig.good.appId).map((t) => ({ taskId: t.id, port: t.port }));
  let good = goodRoute(backends);
  const authorization = `Bearer ${nginx.adminToken}`;

  const push = (body: string) => httpRequest(`${nginx.adminUrl}/edgeroute/apps`, { method: 'POST', body, headers: { authorization, 'content-type': 'application/x-ndjson' }, timeoutMs: 30_000 });
  const storedVersion = async (): Promise<string | null> => {
    const reply = await httpRequest(`${nginx.adminUrl}/edgeroute/status`, { headers: { authorization } });
    return (JSON.parse(reply.body) as { version: string | null }).version;
  };
  let version = 'good-0';
  const restore = async (index: number) => {
    version = `good-${index + 1}`;
    // A fresh hash, as the agent's would be: workers rebuilding from a full push keep any
    // app whose hash did not change, and a valid fuzzed push may have changed /good under the same hash.
    good = { ...good, hash: `h-good-${index + 1}` };
    const reply = await push(`${JSON.stringify({ version, base: null })}\n${JSON.stringify(good)}\n`);
    if (reply.status !== 200) throw new Error(`the good table was refused: ${reply.status} ${reply.body}`);
  };
  await restore(-1);

  for (const index of caseIndices(opts.cases, opts.only)) {
    const rng = Rng.forCase(opts.seed, 'push', index);
    const { text, notes } = generatePush(rng, good, version);
    const fail = (reason: string, crash = false) => book.fail(index, reason, text, notes, crash);
    let reply;
    try {
      reply = await book.timedAsync(index, () => push(text));
    } catch (err) {
      fail(`no answer: ${(err as Error).message}`, true);
      await restore(index);
      continue;
    }
    book.count(`HTTP ${reply.status}`);
    if (reply.status === 200) {
      book.accepted++;
      await restore(index);
    } else if (reply.status === 400 || reply.status === 409) {
      book.rejected++;
      let message: unknown;
      try {
        message = (JSON.parse(reply.body) as { error?: unknown }).error;
      } catch {
        message = undefined;
      }
      if (typeof message !== 'string' || message === '') fail(`HTTP ${reply.status} without a message: ${reply.body.slice(0, 200)}`);
      else book.count(`${reply.status}: ${message.replace(/\d+/g, 'N').replace(/apps\[.*?\]/g, 'apps[ID]').replace(/(got|object:) .*/, '$1 …').slice(0, 70)}`);
      const stored = await storedVersion();
      if (stored !== version) fail(`a refused push changed the table: version ${version} became ${stored}`);
    } else {
      fail(`HTTP ${reply.status} (expected 200, 400 or 409): ${reply.body.slice(0, 200)}`, reply.status >= 500);
      await restore(index);
    }
    if (index % 25 === 0) {
      const problem = await goodAppProblem(nginx.publicUrl, PUSH_GOOD_HOST, rig.good.taskIds);
      if (problem) fail(problem);
    }
    for (const problem of watch.check()) fail(problem, true);
  }
  const problem = await goodAppProblem(nginx.publicUrl, PUSH_GOOD_HOST, rig.good.taskIds);
  if (problem) book.fail(-1, problem);
  for (const line of watch.check()) book.fail(-1, line, '', [], true);
  return book.summary(opts.only?.length ?? opts.cases);
}
