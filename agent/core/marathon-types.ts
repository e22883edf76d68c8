/**
 * The parts of Marathon's app and task JSON that routing depends on, normalised
 * from every shape Marathon has served (see test/fixtures/marathon).
 */

/** What the routing reads of a health check's result (Marathon's also has lastSuccess, lastFailure, consecutiveFailures...). */
export interface HealthResult {
  readonly alive: boolean;
  readonly firstSuccess: string | null;
}

export interface MarathonTask {
  readonly id: string;
  readonly appId: string;
  readonly host: string;
  /** Mesos task state; derived from `startedAt` for old listings that carry no state. */
  readonly state: string;
  /** Host ports, in port-index order. */
  readonly ports: readonly number[];
  /** Container-network addresses (IP-per-task), IPv4 first. */
  readonly ipAddresses: readonly string[];
  readonly startedAt: string | null;
  readonly stagedAt: string | null;
  readonly version: string | null;
  readonly healthCheckResults: readonly HealthResult[];
}

/**
 * Marathon's own ids are far shorter; an id beyond this is garbage, and the
 * plugin (whose shared dict refuses keys over 64 KiB) would refuse a push
 * carrying it, holding back every other app's changes.
 */
export const MAX_APP_ID_LENGTH = 1024;

/**
 * The path segments of an app id, or null when it names no app: "/" or "//"
 * would address /v2/apps/ itself (every app; a PUT there updates them all),
 * and "." or ".." segments are resolved away by URL parsing.
 */
export function appIdSegments(appId: string): string[] | null {
  const segments = appId.split('/').filter(Boolean);
  return segments.length === 0 || segments.some((s) => s === '.' || s === '..') ? null : segments;
}

export type NetworkMode = 'host' | 'bridge' | 'container';

export interface PortSpec {
  /** Port inside the container (container networking) or the declared host port. */
  readonly containerPort: number | null;
  readonly hostPort: number | null;
  readonly name: string | null;
}

export interface MarathonApp {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly instances: number;
  readonly networkMode: NetworkMode;
  /** Declared ports in port-index order, from portDefinitions, portMappings or ipAddress.discovery. */
  readonly ports: readonly PortSpec[];
  /**
   * Marathon service ports in port-index order (portDefinitions[].port, ports,
   * or portMappings[].servicePort); null where none is declared. Absent: none.
   */
  readonly servicePorts?: readonly (number | null)[];
  readonly healthCheckCount: number;
  /** The app's health checks as declared; absent when it has none (only marathon-lb's labels read them). */
  readonly healthChecks?: readonly HealthCheckSpec[];
  readonly taskKillGracePeriodSeconds: number | null;
  readonly version: string | null;
  readonly tasks: readonly MarathonTask[];
}

/** One of an app's declared health checks: what marathon-lb decides a service's mode by. */
export interface HealthCheckSpec {
  /** HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, ...; null when not given. */
  readonly protocol: string | null;
  readonly portIndex: number | null;
  readonly port: number | null;
}

export interface MarathonSnapshot {
  readonly apps: readonly MarathonApp[];
}

/** Something in Marathon's input that was skipped, named so an operator can find it. */
export interface InputProblem {
  readonly appId: string | null;
  readonly message: string;
}
