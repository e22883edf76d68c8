/**
 * Fuzzed pushes to the plugin's admin endpoint (POST /edgeroute/apps, with
 * the admin token), on an nginx no agent feeds. A refused push must get 400
 * or 409 with a message, and leave the table in force as it was; no push may
 * get a 500 or take a worker down. A push that happens to be valid is fine:
 * the table it replaced is pushed back.
 */
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { arrayNode, isObjectNode, mutateDocument, mutateNamedField, mutateText, objectNode, render, setField, TEXT_MUTATIONS, toTree, type JsonTree } from './json-tree.js';
import { pluginPathsProblem, pluginSettingsProblem } from './plugin-oracle.js';
import { Rng } from './prng.js';
import { goodAppProblem, NginxWatch, type RigTargetRun } from './rig.js';
import { CaseBook, caseIndices, type FuzzSummary } from './summary.js';

export type PushFuzzOptions = RigTargetRun;

export const PUSH_GOOD_HOST = 'good.push';
const ROUTE_FIELDS: readonly RegExp[] = [
  /^id$/,
  /^hash$/,
  /^vhosts$/,
  /^versions$/,
  /^backends$/,
  /^backendsFlat$/,
  /^address$/,
  /^port$/,
  /^weight$/,
  /^defaultVersion$/,
  /^(version|base|remove)$/,
  /^(paths|settings)$/,
  /^(stripPath|redirectHttps|sticky|balance|connectTimeout|readTimeout|sendTimeout|maxBodySize|allowFrom)$/,
];

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

function otherRoute(rng: Rng, k: number, extras = rng.chance(0.3)): Record<string, unknown> {
  // Backends as objects, or as one flat array (id, address, port, weight, ...) as agents write them for this plugin.
  const flat = rng.chance(0.5);
  const backends = (n: number) => {
    const list = Array.from({ length: n }, (_, i) => ({ id: `p${k}.task-${i}`, address: rng.pick(['127.0.0.2', '10.1.2.3', '::1', '2001:db8::7']), port: 31000 + i, weight: rng.pick([1, 100, 10_000]) }));
    return flat ? { backendsFlat: list.flatMap((b) => [b.id, b.address, b.port, b.weight]) } : { backends: list };
  };
  const vhosts = [`p${k}.push`, `*.p${k}.push`];
  const route: Record<string, unknown> = {
    id: `/p${k}`,
    hash: `h-${k}-${rng.int(1e6)}`,
    vhosts,
    defaultVersion: 'stable',
    versions: rng.chance(0.5) ? { stable: { marathonAppId: `/p${k}`, ...backends(rng.between(0, 3)) } } : { stable: backends(1), grey: backends(2) },
  };
  // Valid paths and settings, as the agent writes them: the field mutations reach them.
  if (extras) {
    if (rng.chance(0.6)) route.paths = Object.fromEntries(vhosts.filter(() => rng.chance(0.7)).map((host) => [host, validPrefixes(rng)]));
    if (rng.chance(0.6)) route.settings = Object.fromEntries(validSettings(rng));
  }
  return route;
}

const VALID_PREFIXES = ['/', '/api', '/api/v1', '/a.b', '/~user', '/s;p=1', "/x:y@z!$&'()*+,=", '/é', '/...', '/a..b', `/${'p'.repeat(1023)}`];
const INVALID_PREFIXES: readonly unknown[] = ['', 'api', '/api/', '//', '/a//b', '/a b', '/a\tb', '/a%2fb', '/a?b', '/a#b', `/${'p'.repeat(1024)}`, 1, null, true, ['/x'], {}];

function validPrefixes(rng: Rng): string[] {
  return [...new Set(Array.from({ length: rng.between(1, 4) }, () => rng.pick(VALID_PREFIXES)))];
}

const VALID_SETTINGS: ReadonlyArray<readonly [string, readonly unknown[]]> = [
  ['stripPath', [true]],
  ['redirectHttps', [true]],
  ['sticky', ['edgeroute_sticky', 'sid', 'a.b-c_d', 'c'.repeat(64)]],
  ['balance', ['leastconn']],
  ['connectTimeout', [0.001, 0.5, 1, 86_400, 1e-9]],
  ['readTimeout', [60, 2.5, 86_400]],
  ['sendTimeout', [0.25, 30]],
  ['maxBodySize', [1, 1024, 10 * 1024 ** 2, 2 ** 53]],
  ['allowFrom', [['127.0.0.0/8'], ['10.0.0.0/8', '::1'], ['::ffff:1.2.3.4/128', '0.0.0.0/0', '::/0'], ['1:2:3:4:5:6:7::', '::1.2.3.4', 'fe80::/10']]],
];
const INVALID_SETTINGS: ReadonlyArray<readonly [string, readonly unknown[]]> = [
  ['stripPath', [false, 'true', 1, null]],
  ['redirectHttps', [false, 'yes', []]],
  ['sticky', ['', 'a b', 'c'.repeat(65), 'sid;x', 'é', true, null]],
  ['balance', ['roundrobin', 'LEASTCONN', '', 1]],
  ['connectTimeout', [0, -1, 86_400.5, '5', null, true]],
  ['readTimeout', [0, 1e9, '60s']],
  ['sendTimeout', [-0.001, {}]],
  ['maxBodySize', [0, -1, 1.5, 2 ** 53 + 2, '10m', 1e300]],
  ['allowFrom', [[], {}, '10.0.0.0/8', ['10.0.0.0/33'], ['010.0.0.1'], ['fe80::1%eth0'], ['1::2::3'], [1], ['10.0.0.1', 'x'], ['10.0.0.0/0032'], ['1:2:3:4:5:6:7:8::'], [`${'1'.repeat(60)}::/8`]]],
  ['unknownSetting', [true]],
  ['__proto__', [{ polluted: true }]],
  ['StripPath', [true]],
];

function validSettings(rng: Rng): Array<[string, unknown]> {
  const chosen = VALID_SETTINGS.filter(() => rng.chance(0.35));
  return (chosen.length > 0 ? chosen : [rng.pick(VALID_SETTINGS)]).map(([name, values]) => [name, structuredClone(rng.pick(values))]);
}

/** Paths for a route with these vhosts: valid (as the agent writes them), or with one thing wrong. */
function pathsTree(rng: Rng, vhosts: readonly string[], valid: boolean): { tree: JsonTree; note: string } {
  const good = vhosts.filter((_, i) => i === 0 || rng.chance(0.5)).map((host): [string, JsonTree] => [host, toTree(validPrefixes(rng))]);
  if (valid) return { tree: objectNode(rng.chance(0.05) ? [] : good), note: 'valid paths' };
  return rng.weighted<() => { tree: JsonTree; note: string }>([
    [4, () => {
      const bad = rng.pick(INVALID_PREFIXES);
      const at = rng.int(good.length);
      const items = (good[at]![1] as { items: JsonTree[] }).items;
      items.splice(rng.int(items.length + 1), 0, toTree(bad));
      return { tree: objectNode(good), note: `paths with prefix ${JSON.stringify(bad)?.slice(0, 40)}` };
    }],
    [1, () => ({ tree: objectNode([...good, ['other.push', toTree(['/x'])]]), note: 'paths of a host not in vhosts' })],
    [1, () => ({ tree: objectNode([...good, [vhosts[0]!.toUpperCase(), toTree(['/x'])]]), note: 'paths of a host in other case' })],
    [1, () => ({ tree: objectNode([[vhosts[0]!, rng.pick<JsonTree>([arrayNode([]), objectNode([]), objectNode([['1', '/x']]), '/x', null, 1])]]), note: 'paths of a host not an array' })],
    [1, () => ({ tree: rng.pick<JsonTree>([arrayNode(['/x']), '/x', null, 1, true]), note: 'paths not an object' })],
  ])();
}

/** Settings: valid ones, or valid ones plus one bad (a wrong value, an unknown name). */
function settingsTree(rng: Rng, valid: boolean): { tree: JsonTree; note: string } {
  const entries = validSettings(rng).map(([name, value]): [string, JsonTree] => [name, toTree(value)]);
  if (valid) return { tree: objectNode(rng.chance(0.05) ? [] : entries), note: 'valid settings' };
  if (rng.chance(0.1)) {
    const tree = rng.pick<JsonTree>([arrayNode([true]), 'stripPath', null, 1]);
    return { tree, note: `settings ${render(tree)}` };
  }
  const [name, values] = rng.pick(INVALID_SETTINGS);
  const value = toTree(rng.pick(values));
  const kept = entries.filter(([other]) => other !== name);
  kept.splice(rng.int(kept.length + 1), 0, [name, value]);
  return { tree: objectNode(kept), note: `settings.${name} = ${render(value).slice(0, 40)}` };
}

export interface ExtrasPush {
  readonly text: string;
  readonly notes: string[];
  /** The start of the message the plugin must refuse the push with; null: it must accept it. */
  readonly refusal: string | null;
}

/**
 * A push that is valid but for its routes' paths and settings (issue 13):
 * the good route and others, each with valid or invalid ones. The plugin must
 * take it exactly when every route's paths and settings pass
 * route_check.lua's rules (restated in plugin-oracle.ts), and otherwise
 * refuse it whole with a 400 naming the first bad route's field.
 */
function generateExtrasPush(rng: Rng, good: Record<string, unknown>): ExtrasPush {
  const routes = [good, ...[...new Set(Array.from({ length: rng.int(4) }, () => rng.int(50)))].map((k) => otherRoute(rng, k, false))];
  const notes: string[] = [];
  const badChance = rng.pick([0, 0.2, 0.5]);
  const lines = routes.map((route, i) => {
    const tree = toTree(route);
    if (!isObjectNode(tree)) throw new Error('a route is an object');
    const vhosts = route.vhosts as string[];
    for (const [name, make] of [
      ['paths', () => pathsTree(rng, vhosts, !rng.chance(badChance))],
      ['settings', () => settingsTree(rng, !rng.chance(badChance))],
    ] as const) {
      if (!rng.chance(0.6)) continue;
      const made = make();
      setField(tree, name, made.tree);
      notes.push(`route ${i + 1} (${String(route.id)}): ${made.note}`);
    }
    return render(tree);
  });
  let refusal: string | null = null;
  for (const line of lines) {
    const route = JSON.parse(line) as { id: string; vhosts: string[]; paths?: unknown; settings?: unknown };
    const where = `apps[${route.id}]`;
    const problem = pluginPathsProblem(route.vhosts, route.paths, where) ?? pluginSettingsProblem(route.settings, where);
    if (problem !== null) {
      refusal = problem.startsWith(`${where}.paths`) ? `${where}.paths` : `${where}.settings`;
      notes.push(`expected: ${problem}`);
      break;
    }
  }
  const header = JSON.stringify({ version: `fuzz-${rng.int(1e9)}`, base: null });
  return { text: `${header}\n${lines.join('\n')}\n`, notes, refusal };
}

/** The push body text: header line, the good app's route, others, removals; one of them mutated. */
function generatePush(rng: Rng, good: Record<string, unknown>, currentVersion: string): { text: string; notes: string[]; refusal?: string | null } {
  if (rng.chance(0.25)) return generateExtrasPush(rng, good);
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

/** The push's bytes cut into pieces of 1 byte to 8 KiB, for half the cases; undefined for the others. */
function chunkedPieces(rng: Rng, text: string): Buffer[] | undefined {
  if (!rng.chance(0.5)) return undefined;
  const bytes = Buffer.from(text);
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + rng.int(rng.chance(0.3) ? 16 : 8192);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

/** The "error" of a JSON answer ("" when there is none). */
function errorOf(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    return typeof error === 'string' ? error : '';
  } catch {
    return '';
  }
}

export async function fuzzPush(opts: PushFuzzOptions): Promise<FuzzSummary> {
  const book = new CaseBook('push', opts.seed, opts.log);
  const { rig } = opts;
  const nginx = rig.pushNginx;
  const watch = new NginxWatch(nginx);
  const backends = rig.marathon.tasks(rig.good.appId).map((t) => ({ taskId: t.id, port: t.port }));
  let good = goodRoute(backends);
  const authorization = `Bearer ${nginx.adminToken}`;

  const push = (body: string, pieces?: readonly Buffer[]) =>
    httpRequest(`${nginx.adminUrl}/edgeroute/apps`, { method: 'POST', ...(pieces ? { chunkedBody: pieces } : { body }), headers: { authorization, 'content-type': 'application/x-ndjson' }, timeoutMs: 30_000 });
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
    const { text, notes, refusal } = generatePush(rng, good, version);
    // Half the cases go chunked, cut at random (as the agent sends a large push): the plugin reads those as they arrive.
    const pieces = chunkedPieces(Rng.forCase(opts.seed, 'push-chunked', index), text);
    if (pieces) notes.push(`sent chunked in ${pieces.length} pieces`);
    book.count(pieces ? 'sent chunked' : 'sent with a Content-Length');
    const fail = (reason: string, crash = false) => book.fail(index, reason, text, notes, crash);
    let reply;
    try {
      reply = await book.timedAsync(index, () => push(text, pieces));
    } catch (err) {
      fail(`no answer: ${(err as Error).message}`, true);
      await restore(index);
      continue;
    }
    book.count(`HTTP ${reply.status}`);
    if (refusal !== undefined) {
      // Paths and settings (issue 13): the plugin takes exactly what route_check.lua's rules take.
      book.count(refusal === null ? 'paths and settings: valid push' : 'paths and settings: invalid push');
      if (refusal === null && reply.status !== 200) fail(`a push whose paths and settings are valid got HTTP ${reply.status}: ${reply.body.slice(0, 300)}`);
      if (refusal !== null && reply.status === 200) fail(`a push with bad paths or settings was accepted (expected a 400 naming ${refusal})`);
      if (refusal !== null && reply.status === 400 && !errorOf(reply.body).includes(refusal)) fail(`the 400 does not name ${refusal}: ${reply.body.slice(0, 300)}`);
    }
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
