/** `edgeroute policy set|get|list|rm|validate`: split policies in Redis, checked before they are written. */
import { readFileSync } from 'node:fs';
import { connectTarget, newRedisClient, redisTargetFromOptions, SENTINEL_OPTIONS } from '../fleet/redis-target.js';
import { RedisPolicies } from '../fleet/redis-policies.js';
import { checkPolicyText } from '../policy/policy-check.js';
import { helpText, readOptions, stringOption, UsageError, type OptionSpec } from './options.js';

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

const POLICY_OPTIONS: readonly OptionSpec[] = [
  { name: 'redis', kind: 'string', help: `Redis URL, redis://[user:pass@]host:port[/db], or rediss:// for TLS (default: ${DEFAULT_REDIS})` },
  { name: 'redis-ca', kind: 'string', help: "CA bundle (PEM) that signed Redis's certificate, for rediss:// (default: the system bundle)" },
  ...SENTINEL_OPTIONS,
  { name: 'redis-prefix', kind: 'string', default: 'edgeroute:', help: 'prefix of every Redis key' },
];

const SUMMARY = `Manages split policies (JSON at <prefix>policy:<app>), checked against schemas/policy.schema.json.

  edgeroute policy set APP FILE|-      check, store, and tell every routing node
  edgeroute policy get APP             print the stored policy
  edgeroute policy list                list the apps that have a policy
  edgeroute policy rm APP              remove a policy (the app uses its default version)
  edgeroute policy validate FILE|-     check a policy without storing it

Exit codes: 0 done, 1 failed (Redis), 2 bad usage, 3 invalid policy, 4 no such policy.`;

export const EXIT_INVALID = 3;
export const EXIT_NOT_FOUND = 4;

export async function policyCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(POLICY_OPTIONS, argv, process.env, true, 'policy');
  const [action, ...args] = values.positionals;
  if (values.help || action === undefined) {
    console.log(helpText('policy', SUMMARY, POLICY_OPTIONS));
    return values.help ? 0 : 2;
  }
  if (action === 'validate') return validate(args);

  let target;
  try {
    target = redisTargetFromOptions(values, DEFAULT_REDIS);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (target === null) throw new UsageError('name Redis: --redis URL, or --redis-sentinels with --redis-master');
  const redis = newRedisClient(target, {
    lazyConnect: true,
    ...(target.kind === 'url'
      ? { maxRetriesPerRequest: 1, retryStrategy: () => null }
      : // During a failover the sentinels need a few seconds to elect a master: a write waits for it,
        // bounded (about 15 s), and a write that cannot be confirmed makes the command fail.
        { maxRetriesPerRequest: 20, retryStrategy: (n: number) => (n > 30 ? null : 500), sentinelRetryStrategy: (n: number) => (n > 30 ? null : 500) }),
  });
  redis.on('error', () => undefined);
  try {
    await connectTarget(redis, target);
    const policies = new RedisPolicies(redis, stringOption(values, 'redis-prefix') ?? 'edgeroute:');
    switch (action) {
      case 'set':
        return await set(policies, args);
      case 'get':
        return await get(policies, args);
      case 'list':
        for (const app of await policies.list()) console.log(app);
        return 0;
      case 'rm':
        return await remove(policies, args);
      default:
        throw new UsageError(`unknown action "${action}": use set, get, list, rm or validate`);
    }
  } finally {
    redis.disconnect();
  }
}

function readPolicyText(source: string | undefined): string {
  if (source === undefined) throw new UsageError('name a policy file, or - for standard input');
  try {
    return readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${source}: ${(err as Error).message}`);
  }
}

function report(source: string, errors: readonly string[]): number {
  console.error(`edgeroute policy: ${source} is not a valid policy:`);
  for (const error of errors) console.error(`  ${error}`);
  return EXIT_INVALID;
}

function validate(args: readonly string[]): number {
  const [source] = args;
  const check = checkPolicyText(readPolicyText(source));
  if (!check.ok) return report(source ?? '-', check.errors);
  console.log(`${source} is a valid policy`);
  return 0;
}

async function set(policies: RedisPolicies, args: readonly string[]): Promise<number> {
  const [app, source] = args;
  if (!app) throw new UsageError('usage: edgeroute policy set APP FILE|-');
  const text = readPolicyText(source);
  const check = checkPolicyText(text);
  if (!check.ok) return report(source ?? '-', check.errors);
  // Stored compact: what the plugins read is exactly what was checked.
  await policies.set(app, JSON.stringify(check.policy));
  if (!(await replicated(policies, `stored the policy of ${app}`))) return 1;
  console.log(`stored the policy of ${app} at ${policies.key(app)} and published on ${policies.channel}`);
  return 0;
}

/** How long a write waits for a replica to confirm it. */
const REPLICA_CONFIRM_MS = 2_000;

/**
 * A write the master took but no replica confirmed is not confirmed: a
 * failover now would lose it, so the command says so and fails (run it again
 * once the replicas are back). A master without replicas has nothing to wait for.
 */
async function replicated(policies: RedisPolicies, done: string): Promise<boolean> {
  const { replicas, confirmed } = await policies.replicated(REPLICA_CONFIRM_MS);
  if (replicas === 0 || confirmed > 0) return true;
  console.error(
    `edgeroute policy: ${done} on the Redis master, but none of its ${replicas} replica(s) confirmed it within ${REPLICA_CONFIRM_MS / 1000} s: a failover now would lose it; check the replicas and run the command again`,
  );
  return false;
}

async function get(policies: RedisPolicies, args: readonly string[]): Promise<number> {
  const [app] = args;
  if (!app) throw new UsageError('usage: edgeroute policy get APP');
  const text = await policies.get(app);
  if (text === null) {
    console.error(`edgeroute policy: no policy for ${app} at ${policies.key(app)}`);
    return EXIT_NOT_FOUND;
  }
  try {
    console.log(JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    console.log(text);
  }
  const check = checkPolicyText(text);
  if (!check.ok) return report(policies.key(app), check.errors);
  return 0;
}

async function remove(policies: RedisPolicies, args: readonly string[]): Promise<number> {
  const [app] = args;
  if (!app) throw new UsageError('usage: edgeroute policy rm APP');
  if (!(await policies.remove(app))) {
    console.error(`edgeroute policy: no policy for ${app} at ${policies.key(app)}`);
    return EXIT_NOT_FOUND;
  }
  if (!(await replicated(policies, `removed the policy of ${app}`))) return 1;
  console.log(`removed the policy of ${app}; it uses its default version`);
  return 0;
}
