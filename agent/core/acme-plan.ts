/**
 * ACME decisions that need no I/O: which names of the routing table want
 * certificates, when a certificate is due for renewal, which names need an
 * order now, and how long a failed name waits before the next attempt.
 */
import { parseBoolean } from './route-settings.js';
import { LABEL } from './labels.js';
import type { RoutingTable } from './routing-table.js';

/** When a stored certificate is valid, ms since the epoch. */
export interface CertificateDates {
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Renewal starts once two thirds of the certificate's lifetime have passed (Let's Encrypt's advice: 30 days before a 90-day certificate ends). */
export function renewalAt(dates: CertificateDates): number {
  return dates.notBefore + Math.floor(((dates.notAfter - dates.notBefore) * 2) / 3);
}

/**
 * The exact vhosts of the routed apps labelled `edgeroute.acme=true`
 * (`labelsOf` gives a version's Marathon labels), sorted. A wildcard needs
 * DNS-01, which edgeroute does not do: it is left out.
 */
export function acmeNames(table: RoutingTable | null, labelsOf: (marathonAppId: string) => Readonly<Record<string, string>> | null): string[] {
  const names = new Set<string>();
  for (const app of Object.values(table?.apps ?? {})) {
    if (app.vhosts.length === 0) continue;
    const labelled = Object.values(app.versions).some((version) => {
      const raw = labelsOf(version.marathonAppId)?.[LABEL.acme];
      return raw !== undefined && parseBoolean(raw) === true;
    });
    if (!labelled) continue;
    for (const host of app.vhosts) if (!host.startsWith('*.')) names.add(host);
  }
  return [...names].sort();
}

/** Whether a name is covered by one of `served` (SNI names: exact, or `*.parent`), as the plugin looks names up. */
export function coveredBy(name: string, served: ReadonlySet<string>): boolean {
  if (served.has(name)) return true;
  const dot = name.indexOf('.');
  return dot > 0 && dot < name.length - 1 && served.has(`*${name.slice(dot)}`);
}

export interface OrderPlanInput {
  readonly names: readonly string[];
  /** The certificates in Redis, by name. */
  readonly stored: ReadonlyMap<string, CertificateDates>;
  /** Names a --certs certificate serves (exact or wildcard): manual certificates win, so these are never ordered. */
  readonly manual: ReadonlySet<string>;
  /** Names that failed, by when the next attempt may start (ms). */
  readonly retryAt: ReadonlyMap<string, number>;
  readonly now: number;
}

/** The names to order now, in the order given: no certificate or one due for renewal, not waiting after a failure. */
export function namesToOrder(input: OrderPlanInput): string[] {
  return input.names.filter((name) => {
    if (coveredBy(name, input.manual)) return false;
    const retry = input.retryAt.get(name);
    if (retry !== undefined && retry > input.now) return false;
    const stored = input.stored.get(name);
    return stored === undefined || renewalAt(stored) <= input.now;
  });
}

/** Wait before the next attempt after `failures` failures in a row: doubling from `firstMs`, at most `maxMs`. */
export function retryDelayMs(failures: number, firstMs: number, maxMs: number): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  return Math.min(maxMs, firstMs * 2 ** exponent);
}
