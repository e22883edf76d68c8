/**
 * The edgeroute.tcpPort properties of a fuzzed listing, against what
 * tcp-port-labels.ts predicts: a bad value (or `service` without a service
 * port) skips its app, and only its app, with a problem naming the label;
 * a good one reaches the route as the port it means (unless another app
 * claims the same port); the nginx push of the table leaves TCP-only apps
 * (no vhosts) out and every other route in.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ParsedSnapshot } from '../../agent/core/marathon-apps.js';
import type { AppRoute, RoutingResult } from '../../agent/core/routing-table.js';
import { pushBodyText } from '../../agent/dataplane/nginx/push-format.js';
import { predictTcpPort, TCP_PORT_LABEL } from './tcp-port-labels.js';

export interface TcpPortListing {
  /** The generated apps, before the mutation. */
  readonly generated: readonly { readonly id: string; readonly text: string }[];
  /** Apps the mutation did not touch. */
  readonly untouchedIds: readonly string[];
}

export function tcpPortProblems(listing: TcpPortListing, parsed: ParsedSnapshot, result: RoutingResult, count: (name: string) => void): string[] {
  const out: string[] = [];
  const originals = new Map(listing.generated.map((item) => [item.id, (JSON.parse(item.text) as { labels?: Record<string, unknown> }).labels ?? {}]));
  const routeOf = new Map<string, AppRoute>();
  for (const route of Object.values(result.table.apps)) for (const version of Object.values(route.versions)) routeOf.set(version.marathonAppId, route);
  const problemsOf = (id: string) => result.problems.filter((p) => p.appId === id).map((p) => p.message);
  const portIndexOf = (labels: Readonly<Record<string, string>>) => (/^\d+$/.test((labels['edgeroute.portIndex'] ?? '0').trim()) ? Number(labels['edgeroute.portIndex'] ?? 0) : 0);
  const predictions = new Map(parsed.snapshot.apps.filter((app) => app.labels[TCP_PORT_LABEL] !== undefined).map((app) => [app.id, predictTcpPort(app.labels[TCP_PORT_LABEL]!, app.servicePorts, portIndexOf(app.labels))]));
  const claims = new Map<number, number>();
  for (const p of predictions.values()) if (p.kind === 'port') claims.set(p.port, (claims.get(p.port) ?? 0) + 1);

  for (const app of parsed.snapshot.apps) {
    const prediction = predictions.get(app.id);
    if (prediction === undefined) continue;
    const raw = app.labels[TCP_PORT_LABEL]!;
    const asGenerated = isDeepStrictEqual(app.labels, originals.get(app.id));
    const problems = problemsOf(app.id);
    if (prediction.kind !== 'port') {
      count(prediction.kind === 'bad' ? 'tcp port: a bad one skipped its app' : 'tcp port: service without a service port skipped its app');
      if (routeOf.has(app.id)) out.push(`app ${app.id} was routed with ${TCP_PORT_LABEL}=${JSON.stringify(raw)}`);
      const names = prediction.kind === 'bad' ? (m: string) => m.includes(TCP_PORT_LABEL) : (m: string) => m.includes(TCP_PORT_LABEL) && m.includes('service port');
      // An app with two bad labels gets one warning, naming the first the agent reads.
      const skippedForAnother = (m: string) => /^skipped: edgeroute\.\w+=/.test(m) && !m.includes(TCP_PORT_LABEL);
      if (!problems.some(names) && !problems.some(skippedForAnother)) out.push(`app ${app.id} has ${TCP_PORT_LABEL}=${JSON.stringify(raw)} and no problem names it: ${problems.join('; ').slice(0, 300)}`);
      continue;
    }
    if (problems.some((m) => m.includes(`${TCP_PORT_LABEL}=`))) out.push(`app ${app.id} was refused for a good ${TCP_PORT_LABEL}=${JSON.stringify(raw)}: ${problems.join('; ').slice(0, 300)}`);
    const route = routeOf.get(app.id);
    // Another app claims the port, or versions of one app share it: the first by id decides.
    if (!asGenerated || route === undefined || claims.get(prediction.port)! > 1 || Object.keys(route.versions).length > 1) continue;
    if (route.tcpPort !== prediction.port) out.push(`app ${app.id} (${TCP_PORT_LABEL}=${JSON.stringify(raw)}) was routed with tcpPort ${route.tcpPort}, not ${prediction.port}`);
    else count('tcp port: carried into the route as predicted');
  }

  // A bad label skips only its app: every other app the listing left alone, without problems, is routed.
  const untouched = new Set(listing.untouchedIds);
  for (const app of parsed.snapshot.apps) {
    if (!untouched.has(app.id) || !app.id.startsWith('/fuzz/routed-') || problemsOf(app.id).length > 0) continue;
    const p = predictions.get(app.id);
    if (p?.kind === 'port' && claims.get(p.port)! > 1) continue;
    if (!routeOf.has(app.id)) out.push(`app ${app.id}, untouched and without problems, has no route`);
  }

  // nginx gets every route with vhosts and no TCP-only one.
  const pushed = new Set(
    pushBodyText({ version: 'fuzz', base: null, apps: result.table.apps })
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => (JSON.parse(line) as { id: string }).id),
  );
  for (const route of Object.values(result.table.apps)) {
    if (route.vhosts.length === 0) {
      count('tcp port: a TCP-only app left out of the nginx push');
      if (route.tcpPort === undefined) out.push(`app ${route.id} is routed with neither vhosts nor a TCP port`);
      if (pushed.has(route.id)) out.push(`TCP-only app ${route.id} (tcpPort ${route.tcpPort}) is in the nginx push`);
    } else if (!pushed.has(route.id)) out.push(`app ${route.id} (vhosts ${route.vhosts.join(',')}) is missing from the nginx push`);
  }
  return out;
}
