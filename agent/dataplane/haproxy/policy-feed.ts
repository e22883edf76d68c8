/**
 * Split policies for an HAProxy node: the agent reads them from Redis (the
 * nginx plugin reads them itself), checks them as `edgeroute policy` does,
 * and hands the Lua action a compiled record (lua-records.ts). Read every
 * second and at once on a PUBLISH to <prefix>policy-changed (poke()); an
 * invalid policy is logged once per change and the last good one stays,
 * Redis away keeps every last good policy, as on nginx nodes.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isCidr } from '../../policy/cidr.js';
import { checkPolicyText, type Policy } from '../../policy/policy-check.js';
import { policyRecord, regionsRecord } from './lua-records.js';
import type { PolicySource } from './lua-routing.js';

export class HaproxyPolicyFeed implements PolicySource {
  private apps: readonly string[] = [];
  /** Text last read per app, good or not: problems are logged once per change. */
  private readonly seen = new Map<string, string | null>();
  private readonly records = new Map<string, string>();
  /** md5 of the text of each record, as the nginx plugin tells its own (the fleet view compares them). */
  private readonly digestsByApp = new Map<string, string>();
  /** Apps whose policy has a region rule: the CIDR→region table is read for them. */
  private readonly regionApps = new Set<string>();
  private regionsText: string | null = null;
  private regionsRaw: string | null = null;
  private listener: () => void = () => undefined;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly intervalMs = 1_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  onChange(listener: () => void): void {
    this.listener = listener;
  }

  record(app: string): string | null {
    return this.records.get(app) ?? null;
  }

  /** The watched apps → md5 of the policy text in force (null: none). */
  digests(): Map<string, string | null> {
    return new Map(this.apps.map((app) => [app, this.digestsByApp.get(app) ?? null]));
  }

  /** The Redis hash <prefix>regions as an x:regions record, while some policy has a region rule. */
  regions(): string | null {
    return this.regionApps.size > 0 ? this.regionsText : null;
  }

  watch(apps: readonly string[]): void {
    const sorted = [...apps].sort();
    if (sorted.join('\n') === this.apps.join('\n')) return;
    const added = sorted.some((a) => !this.apps.includes(a));
    this.apps = sorted;
    for (const app of [...this.seen.keys()]) {
      if (sorted.includes(app)) continue;
      this.seen.delete(app);
      this.records.delete(app);
      this.digestsByApp.delete(app);
      this.regionApps.delete(app);
    }
    if (added) this.poke();
  }

  /** Reads the policies now (or once more after the read under way). */
  poke(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.refresh()
      .catch((err: Error) => this.log.debug({ err: err.message }, 'split policies not read from redis'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Resolves once no read is under way (tests). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async refresh(): Promise<void> {
    const apps = this.apps;
    if (apps.length === 0 || this.redis.status !== 'ready') return;
    const texts = await this.redis.mget(...apps.map((app) => `${this.prefix}policy:${app}`));
    let changed = false;
    apps.forEach((app, i) => {
      const text = texts[i] ?? null;
      if (this.seen.has(app) && this.seen.get(app) === text) return;
      this.seen.set(app, text);
      if (text === null) {
        this.regionApps.delete(app);
        this.digestsByApp.delete(app);
        if (this.records.delete(app)) {
          changed = true;
          this.log.info({ app }, `no split policy for app ${app} any more; it uses its default version`);
        }
        return;
      }
      const check = checkPolicyText(text);
      if (!check.ok) {
        this.log.error({ app, problems: check.errors }, `split policy of app ${app} refused, keeping the last good one: ${check.errors[0]}`);
        return;
      }
      if (usesRegion(check.policy)) this.regionApps.add(app);
      else this.regionApps.delete(app);
      this.digestsByApp.set(app, createHash('md5').update(text).digest('hex'));
      const record = policyRecord(check.policy);
      if (this.records.get(app) !== record) {
        this.records.set(app, record);
        changed = true;
        this.log.info({ app }, `split policy of app ${app} loaded`);
      }
    });
    if (this.regionApps.size > 0 && (await this.readRegions())) changed = true;
    if (changed) this.listener();
  }

  /** Reads the CIDR→region table (as the nginx plugin does, HGETALL); true when it changed. */
  private async readRegions(): Promise<boolean> {
    const table = await this.redis.hgetall(`${this.prefix}regions`);
    const raw = JSON.stringify(Object.entries(table).sort());
    if (raw === this.regionsRaw) return false;
    this.regionsRaw = raw;
    const bad = Object.keys(table).filter((c) => !isCidr(c));
    if (bad.length > 0) this.log.error({ entries: bad.slice(0, 5) }, `regions table: ${bad[0]} is not a CIDR; entry ignored`);
    this.regionsText = regionsRecord(Object.entries(table).filter(([c]) => isCidr(c)));
    return true;
  }
}

function usesRegion(policy: Policy): boolean {
  return (policy.rules ?? []).some((r) => r.match.region !== undefined);
}
