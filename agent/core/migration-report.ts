/**
 * The migration report (`edgeroute labels`): for each app an agent with these
 * options would route, how it routes on nginx and on HAProxy nodes, what each
 * of its marathon-lb labels became and what needs attention. Pure: the same
 * routing table computation the agent runs, over the apps without their
 * tasks (a report is about labels, not about which tasks are up).
 */
import { describeBasicAuth } from './basic-auth.js';
import { groupSelected } from './groups.js';
import { readRoutingLabels } from './labels.js';
import { hasEdgerouteLabels, hasMarathonLbLabels, readMarathonLbLabels, readsMarathonLbLabels, type LabelReading } from './marathon-lb-labels.js';
import type { MarathonApp, MarathonSnapshot } from './marathon-types.js';
import type { RouteSettings } from './route-settings.js';
import { describeTcpBind } from './tcp-bind.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, type AppRoute } from './routing-table.js';

export interface ReportOptions {
  /** The agent's --group; null: none. */
  readonly group: string | null;
  readonly marathonLbLabels: boolean;
}

export interface AppReport {
  readonly id: string;
  /** Which labels the agent reads it by; "none" when it would read neither (marathon-lb labels without --marathon-lb-labels). */
  readonly readBy: 'edgeroute' | 'marathon-lb' | 'none';
  /** unchanged: routes as marathon-lb would (or by its own edgeroute labels, without problems); attention: something differs that was not chosen. */
  readonly status: 'unchanged' | 'attention';
  /** How it routes on nginx nodes, then on HAProxy nodes: "not routed" or hosts/paths, settings and TCP port. */
  readonly nginx: string;
  readonly haproxy: string;
  /** Every marathon-lb label read (marathon-lb apps only), and what it became. */
  readonly labels: readonly LabelReading[];
  /** What else needs attention: the routing's own problems (a host another app holds, ...), what to do. */
  readonly problems: readonly string[];
}

export interface MigrationReport {
  readonly apps: readonly AppReport[];
  readonly summary: { readonly apps: number; readonly unchanged: number; readonly attention: number };
}

export function migrationReport(snapshot: MarathonSnapshot, options: ReportOptions): MigrationReport {
  const apps = snapshot.apps.map((app) => ({ ...app, tasks: [] }));
  const result = computeRoutingTable({
    snapshot: { apps },
    config: { ...DEFAULT_ROUTING_CONFIG, group: options.group, marathonLbLabels: options.marathonLbLabels },
    hostAddresses: new Map(),
    healthMemory: new Map(),
    now: 0,
  });
  // A Marathon app's routes: its own port's, then one per edgeroute.port.N.
  const routesOf = new Map<string, AppRoute[]>();
  for (const route of Object.values(result.table.apps)) {
    for (const version of Object.values(route.versions)) routesOf.set(version.marathonAppId, [...(routesOf.get(version.marathonAppId) ?? []), route]);
  }
  const problemsOf = new Map<string, string[]>();
  for (const problem of result.problems) {
    if (problem.appId === null) continue;
    // The reader's own warnings are in the label lines already.
    if (problem.message.startsWith('marathon-lb label')) continue;
    problemsOf.set(problem.appId, [...(problemsOf.get(problem.appId) ?? []), problem.message]);
  }

  const reports: AppReport[] = [];
  for (const app of [...apps].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    // A colour of a zdd pair is served by its deployment group's route (merged under the newer colour's id).
    const group = options.marathonLbLabels && readsMarathonLbLabels(app.labels, options.group) ? readMarathonLbLabels(app, options.group).deployment?.group : undefined;
    const routes = group === undefined ? routesOf.get(app.id) ?? [] : Object.values(result.table.apps).filter((r) => r.id === group || r.id.startsWith(`${group}:`));
    const report = appReport(app, options, routes, problemsOf.get(app.id) ?? []);
    if (report) reports.push(report);
  }
  const attention = reports.filter((r) => r.status === 'attention').length;
  return { apps: reports, summary: { apps: reports.length, unchanged: reports.length - attention, attention } };
}

function appReport(app: MarathonApp, options: ReportOptions, routes: readonly AppRoute[], routingProblems: string[]): AppReport | null {
  const problems = [...routingProblems];
  let readBy: AppReport['readBy'];
  let labels: readonly LabelReading[] = [];
  if (hasEdgerouteLabels(app.labels)) {
    const own = readRoutingLabels(app.labels);
    // An app whose labels are bad is reported by every agent, as every agent warns about it.
    if (own.ok && (!own.routed || !groupSelected(options.group, own.value.groups))) return null;
    readBy = 'edgeroute';
    if (hasMarathonLbLabels(app.labels)) labels = [{ label: 'HAPROXY_*', value: '', fate: 'differs', note: 'not read: the app has edgeroute.* labels, which win' }];
  } else if (readsMarathonLbLabels(app.labels, options.group)) {
    const reading = readMarathonLbLabels(app, options.group);
    // No port of this app is this agent's to route.
    if (!reading.ports.some((p) => p.selected)) return null;
    labels = reading.readings;
    if (options.marathonLbLabels) readBy = 'marathon-lb';
    else {
      readBy = 'none';
      problems.push('read by its marathon-lb labels only with --marathon-lb-labels: not routed');
    }
  } else return null;
  const attention = problems.length > 0 || labels.some((l) => l.fate === 'unsupported' || l.fate === 'bad');
  return {
    id: app.id,
    readBy,
    status: attention ? 'attention' : 'unchanged',
    nginx: describeRoutes(app.id, routes, 'nginx'),
    haproxy: describeRoutes(app.id, routes, 'haproxy'),
    labels,
    problems,
  };
}

function describeRoutes(appId: string, routes: readonly AppRoute[], dataPlane: 'nginx' | 'haproxy'): string {
  if (routes.length === 0) return 'not routed';
  const sorted = [...routes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return sorted
    .map((route) => {
      const port = route.id.startsWith(`${appId}:`) ? `port index ${route.id.slice(appId.length + 1)}: ` : '';
      return `${port}${describeRoute(route, dataPlane)}`;
    })
    .join('; ');
}

function describeRoute(route: AppRoute, dataPlane: 'nginx' | 'haproxy'): string {
  const parts: string[] = [];
  if (route.vhosts.length > 0) {
    const places = route.vhosts.flatMap((host) => (route.paths?.[host] ?? ['/']).map((path) => (path === '/' ? host : `${host}${path}`)));
    const settings = describeSettings(route.settings);
    parts.push(`HTTP ${places.join(', ')}${settings === '' ? '' : ` (${settings})`}`);
  }
  if (route.tcpPort !== undefined) {
    const port = route.tcpBind === undefined ? String(route.tcpPort) : describeTcpBind(route.tcpBind, route.tcpPort);
    if (dataPlane === 'haproxy') parts.push(`TCP port ${port}`);
    else if (parts.length === 0) return `not routed (TCP port ${port}: HAProxy nodes only)`;
  }
  const own = route.versions[route.defaultVersion]?.marathonAppId;
  if (route.id !== own && !route.id.startsWith(`${own}:`)) parts.push(`as app ${route.id}`);
  return parts.join('; ');
}

function describeSettings(settings: RouteSettings | undefined): string {
  if (!settings) return '';
  const out: string[] = [];
  if (settings.stripPath) out.push('path stripped');
  if (settings.redirectHttps) out.push('redirect to https');
  if (settings.basicAuth) out.push(describeBasicAuth(settings.basicAuth));
  if (settings.redirectRoot !== undefined) out.push(`/ redirected to ${settings.redirectRoot}`);
  if (settings.hsts) out.push('HSTS');
  if (settings.sticky) out.push(`sticky (cookie ${settings.sticky})`);
  if (settings.balance) out.push(settings.balance);
  if (settings.allowFrom) out.push(`only from ${settings.allowFrom.join(' ')}`);
  if (settings.connectTimeout !== undefined) out.push(`connect timeout ${settings.connectTimeout}s`);
  if (settings.readTimeout !== undefined) out.push(`read timeout ${settings.readTimeout}s`);
  if (settings.sendTimeout !== undefined) out.push(`send timeout ${settings.sendTimeout}s`);
  if (settings.maxBodySize !== undefined) out.push(`bodies up to ${settings.maxBodySize} bytes`);
  return out.join(', ');
}
