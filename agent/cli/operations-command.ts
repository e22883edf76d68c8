/**
 * `edgeroute drain | kill | scale | restart | rollout`: announce before kill.
 * Each talks to Marathon and to the Redis the routing nodes share, prints its
 * progress, and kills nothing before every live node has stopped routing to
 * the tasks and finished their requests (or the drain timeout passed).
 */
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { MarathonClient, parseMarathonUrls } from '../source/marathon/marathon-client.js';
import { DrainBoard } from '../fleet/redis-drains.js';
import { connectTarget, newRedisClient, redisTargetFromOptions, SENTINEL_OPTIONS } from '../fleet/redis-target.js';
import { RedisPolicies } from '../fleet/redis-policies.js';
import { DEFAULT_DRAIN_TIMEOUTS, OperationError, type OperationContext, type Progress } from '../operations/operation-context.js';
import { drain, kill, restart, scale, undrain } from '../operations/task-operations.js';
import { abortRollout, DEFAULT_ROLLOUT, rollout, SPLIT_KEY_PATTERN } from '../operations/rollout.js';
import type { DrainOutcome } from '../operations/drain-wait.js';
import { helpText, numberOption, readOptions, stringOption, UsageError, type OptionSpec, type OptionValues } from './options.js';

const COMMON: readonly OptionSpec[] = [
  { name: 'marathon', kind: 'string', required: true, help: 'Marathon URL(s), comma-separated' },
  { name: 'marathon-ca', kind: 'string', help: 'CA bundle for an HTTPS Marathon' },
  { name: 'redis', kind: 'string', help: 'the Redis the routing nodes share; rediss:// for TLS, USER:PASS@ for an ACL user (default: redis://127.0.0.1:6379)' },
  { name: 'redis-ca', kind: 'string', help: "CA bundle (PEM) that signed Redis's certificate, for rediss:// (default: the system bundle)" },
  ...SENTINEL_OPTIONS,
  { name: 'redis-prefix', kind: 'string', default: 'edgeroute:', help: 'prefix of every Redis key' },
  { name: 'drain-timeout', kind: 'string', default: '60', help: 'seconds to wait for every live node to drain, then go on' },
  { name: 'mark-ttl', kind: 'string', default: '900', help: 'seconds a drain mark lasts if nothing lifts it' },
  { name: 'api-token', kind: 'string', help: "token for the agents' APIs, when their reads need one" },
  { name: 'json', kind: 'boolean', help: 'print progress as JSON lines' },
];

const PUBLISH_TIMEOUT: OptionSpec = { name: 'publish-timeout', kind: 'string', default: '300', help: 'seconds to wait for new tasks to be published' };

interface CommandSpec {
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  run(ctx: OperationContext, values: OptionValues, args: readonly string[]): Promise<DrainOutcome | null | void>;
}

const EXIT_NOT_CONFIRMED = 5;

const EXIT_CODES = `Exit codes: 0 done, 1 failed, 2 bad usage, ${EXIT_NOT_CONFIRMED} done but some live node did not confirm the drain in time.`;

const SPECS: Record<string, CommandSpec> = {
  drain: {
    summary: `edgeroute drain TASK...          take tasks out of every routing node's upstreams and wait until their requests finished
edgeroute drain --lift TASK...   put them back

The tasks stay drained until lifted or until --mark-ttl passes. ${EXIT_CODES}`,
    options: [{ name: 'lift', kind: 'boolean', help: 'lift the drain instead' }],
    async run(ctx, values, args) {
      if (args.length === 0) throw new UsageError('name at least one task id');
      if (values.lift === true) return undrain(ctx, args);
      return drain(ctx, args, timeouts(values));
    },
  },
  kill: {
    summary: `edgeroute kill TASK... [--scale]   drain the tasks on every routing node, then kill them in Marathon
                                   (--scale: lower the app's instances instead of replacing them). ${EXIT_CODES}`,
    options: [{ name: 'scale', kind: 'boolean', help: "lower the app's instances rather than let Marathon replace the tasks" }],
    async run(ctx, values, args) {
      if (args.length === 0) throw new UsageError('name at least one task id');
      return (await kill(ctx, args, values.scale === true, timeouts(values))).drain;
    },
  },
  scale: {
    summary: `edgeroute scale APP N   set an app's instances; scaling in drains the tasks it removes first
                        (tasks not serving yet, then the youngest). ${EXIT_CODES}`,
    options: [],
    async run(ctx, values, args) {
      const [app, count] = args;
      if (app === undefined || count === undefined || args.length > 2) throw new UsageError('usage: edgeroute scale APP N');
      const n = Number(count);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`N must be a whole number ≥ 0, not ${JSON.stringify(count)}`);
      return (await scale(ctx, app, n, timeouts(values)))?.drain ?? null;
    },
  },
  restart: {
    summary: `edgeroute restart APP [--batch K]   replace every task, K at a time: drain, kill, and wait until the
                                    replacements are published on every routing node before the next batch.`,
    options: [{ name: 'batch', kind: 'string', default: '1', help: 'tasks replaced at a time' }, PUBLISH_TIMEOUT],
    async run(ctx, values, args) {
      const [app] = args;
      if (app === undefined || args.length > 1) throw new UsageError('usage: edgeroute restart APP [--batch K]');
      await restart(ctx, app, numberOption(values, 'batch', 1), { ...timeouts(values), publishTimeoutMs: 1000 * numberOption(values, 'publish-timeout', 1) });
    },
  },
  rollout: {
    summary: `edgeroute rollout APP --to NEW-APP.json   blue-green: deploy the new version (a Marathon app with
                                          edgeroute.app=APP), wait until it is published and warm, move
                                          users over in --steps, make it the default, drain the old
                                          version and scale it to zero.
edgeroute rollout APP --abort             roll back from wherever the rollout stopped.`,
    options: [
      { name: 'to', kind: 'string', help: 'the new version: a Marathon app definition (JSON file, or - for stdin)' },
      { name: 'abort', kind: 'boolean', help: 'roll back the recorded rollout of APP' },
      { name: 'steps', kind: 'list', default: DEFAULT_ROLLOUT.steps.join(','), help: 'percentages of users moved before the switch' },
      { name: 'step-wait', kind: 'string', default: String(DEFAULT_ROLLOUT.stepWaitMs / 1000), help: 'seconds each step holds' },
      { name: 'by', kind: 'string', default: DEFAULT_ROLLOUT.by, help: 'what keeps a user on one version: ip, cookie:NAME or header:NAME' },
      PUBLISH_TIMEOUT,
    ],
    async run(ctx, values, args) {
      const [app] = args;
      if (app === undefined || args.length > 1) throw new UsageError('usage: edgeroute rollout APP --to NEW-APP.json | --abort');
      const by = stringOption(values, 'by') ?? DEFAULT_ROLLOUT.by;
      if (!new RegExp(SPLIT_KEY_PATTERN).test(by)) throw new UsageError(`--by must be ip, cookie:NAME or header:NAME, not ${JSON.stringify(by)}`);
      const opts = {
        ...timeouts(values),
        steps: ((values.steps as string[] | undefined) ?? []).map((s) => {
          const n = Number(s);
          if (!(n > 0 && n < 100)) throw new UsageError(`--steps takes percentages between 0 and 100, not ${JSON.stringify(s)}`);
          return n;
        }),
        stepWaitMs: 1000 * numberOption(values, 'step-wait', 0),
        by,
        publishTimeoutMs: 1000 * numberOption(values, 'publish-timeout', 1),
      };
      if (values.abort === true) {
        await abortRollout(ctx, app, opts);
        return;
      }
      const source = stringOption(values, 'to');
      if (source === null) throw new UsageError('--to NEW-APP.json (or --abort) is required');
      let definition: unknown;
      try {
        definition = JSON.parse(readFileSync(source === '-' ? 0 : source, 'utf8'));
      } catch (err) {
        throw new UsageError(`cannot read the app definition ${source}: ${(err as Error).message}`);
      }
      await rollout(ctx, app, definition, opts);
    },
  },
};

function timeouts(values: OptionValues): typeof DEFAULT_DRAIN_TIMEOUTS {
  return { drainTimeoutMs: 1000 * numberOption(values, 'drain-timeout', 0), markTtlMs: 1000 * numberOption(values, 'mark-ttl', 1) };
}

export const OPERATION_SUMMARIES: Record<string, string> = {
  drain: "take tasks out of every routing node's upstreams, waiting for their requests",
  kill: 'drain tasks on every routing node, then kill them in Marathon',
  scale: "set an app's instances, draining the tasks a scale-in removes",
  restart: 'replace every task of an app, a batch at a time, without losing a request',
  rollout: 'blue-green rollout to a new version of an app (or --abort)',
};

export function operationCommand(name: keyof typeof SPECS): (argv: readonly string[]) => Promise<number> {
  const spec = SPECS[name] as CommandSpec;
  return async (argv) => {
    const options = [...COMMON, ...spec.options];
    const values = readOptions(options, argv, process.env, true, name);
    if (values.help) {
      console.log(helpText(`${name}`, spec.summary, options));
      return 0;
    }
    let target;
    try {
      target = redisTargetFromOptions(values, 'redis://127.0.0.1:6379');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (target === null) throw new UsageError('name Redis: --redis URL, or --redis-sentinels with --redis-master');
    // Through Sentinel a command waits out a failover (bounded, about 15 s) instead of failing at once.
    const sentinelRetries = { maxRetriesPerRequest: 20, sentinelRetryStrategy: (n: number) => (n > 30 ? null : 500) };
    const redis = newRedisClient(target, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (n) => (n > 20 ? null : 200),
      ...(target.kind === 'sentinel' ? sentinelRetries : {}),
    });
    redis.on('error', () => undefined);
    const marathon = new MarathonClient(parseMarathonUrls(stringOption(values, 'marathon') ?? ''), { caFile: stringOption(values, 'marathon-ca') });
    const prefix = stringOption(values, 'redis-prefix') ?? 'edgeroute:';
    const aborter = new AbortController();
    const onSignal = () => {
      console.error(`edgeroute ${name}: interrupted; drain marks already written stay until they expire (or: edgeroute drain --lift TASK...)`);
      aborter.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const started = Date.now();
    const ctx: OperationContext = {
      marathon,
      redis,
      prefix,
      board: new DrainBoard(redis, prefix),
      policies: new RedisPolicies(redis, prefix),
      by: `${userInfo().username}@${hostname()}`,
      apiToken: stringOption(values, 'api-token'),
      signal: aborter.signal,
      report: values.json === true ? (p) => console.log(JSON.stringify(p)) : (p) => console.log(formatProgress(p, started)),
    };
    try {
      await connectTarget(redis, target).catch((err: Error) => {
        throw new OperationError(err.message);
      });
      const outcome = await spec.run(ctx, values, values.positionals);
      return outcome && !outcome.drained ? EXIT_NOT_CONFIRMED : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      redis.disconnect();
    }
  };
}

export function formatProgress(p: Progress, started: number): string {
  return `[${((p.at - started) / 1000).toFixed(1).padStart(5)} s] ${p.step.padEnd(8)} ${p.message}`;
}
