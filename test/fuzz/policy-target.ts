/**
 * Fuzzed split policies through the plugin: each written to Redis for a
 * two-version app and announced with a PUBLISH, as an operator with
 * redis-cli would. Every refused policy must be logged (one line, naming the
 * field), the last good policy must stay in force, no worker may die, and
 * the CLI's checker (checkPolicyText) must decide as the plugin did.
 */
import { httpGet } from '../../agent/sandbox/http-get.js';
import { checkPolicyText } from '../../agent/policy/policy-check.js';
import { generatePolicyCase, markerPolicy } from './policy-cases.js';
import { Rng } from './prng.js';
import { isLogLineStart, NginxWatch, waitForLogLine, type RigTargetRun } from './rig.js';
import { CaseBook, caseIndices, preview, type FuzzSummary } from './summary.js';

export type PolicyFuzzOptions = RigTargetRun;

const DECISION_TIMEOUT_MS = 5_000;

/** Backtracking bombs, each with a subject that sets it off, for the last check. */
const REGEX_BOMBS: ReadonlyArray<readonly [string, string]> = [
  ['(a+)+$', `${'a'.repeat(4000)}!`],
  ['(a|aa)+$', `${'a'.repeat(4000)}!`],
  ['(a|a?)+$', `${'a'.repeat(4000)}!`],
  ['(.*a){20}', 'a'.repeat(4000)],
  ['^(\\w+\\s?)*$', `${'ab '.repeat(1300)}!`],
  ['(x+x+)+y', 'x'.repeat(4000)],
];

interface Decision {
  readonly loaded: boolean;
  readonly line: string;
}

export async function fuzzPolicies(opts: PolicyFuzzOptions): Promise<FuzzSummary> {
  const book = new CaseBook('policies', opts.seed, opts.log);
  const { rig } = opts;
  const { app, host } = rig.shop;
  const key = `edgeroute:policy:${app}`;
  const watch = new NginxWatch(rig.node.nginx);
  const decisionLine = (line: string) => line.includes(`split policy of app ${app} `) && (line.includes(' refused, ') || line.includes(' loaded'));

  const write = async (text: string): Promise<Decision | null> => {
    await rig.redisClient.set(key, text);
    await rig.redisClient.publish('edgeroute:policy-changed', app);
    const line = await waitForLogLine(watch, decisionLine, DECISION_TIMEOUT_MS);
    return line === null ? null : { loaded: !line.includes(' refused, '), line };
  };

  /** The version nginx picks for a request with these headers, from the response header. */
  const versionFor = async (headers: Record<string, string>): Promise<string> => {
    const reply = await httpGet(`${rig.node.nginx.publicUrl}/`, { host, headers, timeoutMs: 10_000 });
    return reply.status === 200 ? String(reply.headers['x-edgeroute-version']) : `HTTP ${reply.status}`;
  };

  let mark = 'start';
  let lastText = '';
  const installMarker = async (index: number): Promise<void> => {
    mark = `m-${opts.seed}-${index}`;
    lastText = markerPolicy(mark);
    const decision = await write(lastText);
    if (!decision?.loaded) throw new Error(`the marker policy did not load: ${decision?.line ?? 'no decision logged'}`);
    await markerInForce();
  };
  // Each worker syncs policies every 10 ms; new connections often land on the same worker, so
  // answers alone cannot show that the other one synced: give every worker two intervals too.
  const SYNC_GRACE_MS = 25;
  // Worker 0 logs the decision; every worker picks the policy up within its sync interval.
  const markerInForce = async (): Promise<void> => {
    const decidedAt = Date.now();
    const deadline = decidedAt + DECISION_TIMEOUT_MS;
    // Answers in a row, as requests land on either worker: a worker still on the
    // previous policy (say, one with "default": "grey") answers one of them wrong.
    for (let streak = 0; streak < 4 || Date.now() - decidedAt < SYNC_GRACE_MS; ) {
      const followed = (await versionFor({ 'x-fuzz-mark': mark })) === 'grey' && (await versionFor({})) === 'stable';
      streak = followed ? streak + 1 : 0;
      if (!followed && Date.now() > deadline) throw new Error(`the marker policy ${mark} is not in force on every worker after ${DECISION_TIMEOUT_MS} ms`);
      if (!followed) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await installMarker(-1);

  for (const index of caseIndices(opts.cases, opts.only)) {
    const rng = Rng.forCase(opts.seed, 'policies', index);
    const generated = generatePolicyCase(rng);
    // Redis holds the UTF-8 bytes: a lone surrogate in the JavaScript text is stored as U+FFFD.
    const text = Buffer.from(generated.text, 'utf8').toString('utf8');
    const fail = (reason: string, crash = false) => book.fail(index, reason, text, generated.notes, crash);
    if (text === lastText) {
      book.count('same text as the case before (not rewritten)');
      continue;
    }
    const ts = book.timed(index, () => checkPolicyText(text));
    const decision = await book.timedAsync(index, () => write(text));
    lastText = text;
    if (decision === null) {
      fail(`the plugin logged no decision within ${DECISION_TIMEOUT_MS} ms`);
      await installMarker(index);
      continue;
    }
    if (decision.loaded) book.accepted++;
    else book.rejected++;

    if (ts.ok !== decision.loaded) {
      const tsSaid = ts.ok ? 'valid' : ts.errors.join('; ');
      const luaSaid = decision.loaded ? 'loaded' : decision.line.replace(/^.*refused, keeping the last good one: /, '');
      // JavaScript's regex engine stands in for PCRE in the CLI: where only a pattern is in question, report, do not fail.
      const regexOnly = ts.ok ? luaSaid.includes('is not a valid regex') : ts.errors.every((e) => e.includes('is not a valid regex'));
      if (regexOnly) {
        book.count('disagreements on a regex (JavaScript vs PCRE)');
        book.example('regex disagreements', { index, cli: tsSaid.slice(0, 200), plugin: luaSaid.slice(0, 200) }, 10);
      } else {
        fail(`the CLI and the plugin disagree: CLI ${tsSaid.slice(0, 300)} / plugin ${luaSaid.slice(0, 300)}`);
      }
    }

    if (!decision.loaded) {
      if (!/ refused, keeping the last good one: \/\S*/.test(decision.line)) fail(`the refusal does not name a field: ${preview(decision.line)}`);
      book.count(`refused: ${decision.line.replace(/^.*keeping the last good one: (\/[^:]*):.*$/, '$1').replace(/\/\d+/g, '/N')}`);
      // The last good policy (the marker) still decides.
      const marked = await versionFor({ 'x-fuzz-mark': mark });
      const plain = await versionFor({});
      if (marked !== 'grey' || plain !== 'stable') fail(`the last good policy is not in force after a refusal: marked request → ${marked}, plain → ${plain}`);
    } else {
      book.count('loaded');
      await installMarker(index);
    }
    const broken = watch.seen.filter((line) => line !== '' && !isLogLineStart(line));
    if (broken.length > 0) {
      fail(`the error log has lines that do not start with a date (logged input split a line): ${preview(broken[0]!)}`);
      watch.seen.length = 0;
    }
    for (const problem of watch.check()) fail(problem, true);
  }

  // Backtracking bombs in force, then a request that sets each off: the worker must answer, and say how long it took.
  const bombs: Array<Record<string, unknown>> = [];
  for (const [i, [pattern, subject]] of REGEX_BOMBS.entries()) {
    mark = `bomb-${i}`;
    const policy = JSON.stringify({ rules: [{ match: { header: { name: 'X-Fuzz-Dos', pattern } }, version: 'grey' }, JSON.parse(markerPolicy(mark)).rules[0]] });
    const decision = await write(policy);
    lastText = policy;
    if (!decision?.loaded) {
      bombs.push({ pattern, refused: decision?.line ?? 'no decision' });
      continue;
    }
    await markerInForce();
    const started = performance.now();
    try {
      const version = await versionFor({ 'x-fuzz-dos': subject });
      const ms = Math.round(performance.now() - started);
      book.observe(ms, -1);
      bombs.push({ pattern, subjectBytes: subject.length, ms, version });
    } catch (err) {
      book.fail(-1, `a request against ${pattern} got no answer: ${(err as Error).message}`, subject, [], true);
    }
  }
  book.details.regexBombs = bombs;
  await installMarker(opts.cases);
  for (const problem of watch.check()) book.fail(-1, problem, '', [], true);
  return book.summary(opts.only?.length ?? opts.cases);
}
