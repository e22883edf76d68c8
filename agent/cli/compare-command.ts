/**
 * `edgeroute compare APP`: the app's versions side by side (requests/s,
 * share, 5xx, p50/p99) from the agent's API: across the fleet when the agent
 * has Redis (each agent publishes its node's numbers there; this command adds
 * them up), else that node's alone.
 */
import { fleetAppTraffic, type AppTraffic, type NodeAppWindows } from '../core/traffic.js';
import { helpText, numberOption, readOptions, stringOption, UsageError, type OptionSpec } from './options.js';

const COMPARE_OPTIONS: readonly OptionSpec[] = [
  { name: 'agent', kind: 'string', default: 'http://127.0.0.1:9090', help: "the agent API's URL" },
  { name: 'api-token', kind: 'string', help: 'the API token, when the agent runs with --api-reads token' },
  { name: 'json', kind: 'boolean', help: 'print JSON (one object per refresh with --watch)' },
  { name: 'watch', kind: 'boolean', help: 'refresh until Ctrl-C' },
  { name: 'interval', kind: 'string', default: '2', help: 'seconds between refreshes with --watch' },
  { name: 'node-only', kind: 'boolean', help: "only the agent's own node, even when the fleet's numbers are in Redis" },
];

export interface Comparison extends AppTraffic {
  /** "fleet": every node that published the app, added up; "node": the agent's node. */
  readonly scope: 'fleet' | 'node';
  readonly nodes: readonly string[];
  /** What the latency columns are: p50/p99 from histograms, or means (an HAProxy node whose haproxy.cfg predates its histogram). */
  readonly latency: 'histogram' | 'mean' | null;
}

async function getJson(url: string, token: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body };
}

/** The app's comparison, fleet-wide when the agent can give it. */
export async function readComparison(agent: string, app: string, token: string | null, nodeOnly = false): Promise<Comparison> {
  const base = agent.replace(/\/+$/, '');
  if (!nodeOnly) {
    const fleet = await getJson(`${base}/v1/traffic/fleet?app=${encodeURIComponent(app)}`, token);
    if (fleet.status === 200) {
      const published = (fleet.body.nodes ?? []) as NodeAppWindows[];
      const total = fleetAppTraffic(app, published);
      const latency = published.length === 0 ? null : published.every((p) => p.bounds !== null) ? 'histogram' : 'mean';
      return { ...total, scope: 'fleet', latency };
    }
    if (fleet.status !== 503) throw new Error(`${base}/v1/traffic/fleet answered HTTP ${fleet.status}: ${String(fleet.body.error ?? '')}`);
  }
  const local = await getJson(`${base}/v1/traffic?app=${encodeURIComponent(app)}`, token);
  if (local.status !== 200) throw new Error(`${base}/v1/traffic answered HTTP ${local.status}: ${String(local.body.error ?? '')}`);
  const found = ((local.body.apps ?? []) as AppTraffic[]).find((a) => a.app === app);
  const latency = (local.body.latency ?? null) as Comparison['latency'];
  const node = typeof local.body.node === 'string' ? local.body.node : 'this node';
  return { ...(found ?? { app, defaultVersion: null, requestsPerSecond: 0, versions: [] }), scope: 'node', nodes: [node], latency };
}

const fixed = (n: number | null, digits: number, unit = '') => (n === null ? '–' : `${n.toFixed(digits)}${unit}`);

/** The comparison as a table; flags last. */
export function formatComparison(c: Comparison): string {
  const where = c.scope === 'fleet' ? `fleet: ${c.nodes.length} node${c.nodes.length === 1 ? '' : 's'}${c.nodes.length > 0 ? ` (${c.nodes.join(', ')})` : ''}` : `node ${c.nodes[0] ?? ''}`;
  const lines = [`${c.app}: ${fixed(c.requestsPerSecond, 1)} requests/s, ${where}`];
  if (c.versions.length === 0) {
    lines.push('no requests in the live window');
    return lines.join('\n');
  }
  const mean = c.latency === 'mean';
  const header = ['version', 'req/s', 'share', '5xx', ...(mean ? ['mean'] : ['p50', 'p99']), ''];
  const rows = c.versions.map((v) => [
    v.version + (v.version === c.defaultVersion ? ' *' : ''),
    fixed(v.requestsPerSecond, 1),
    fixed(v.share === null ? null : v.share * 100, 1, ' %'),
    fixed(v.errorRatio === null ? null : v.errorRatio * 100, 1, ' %'),
    ...(mean ? [fixed(v.meanMs, 1, ' ms')] : [fixed(v.p50Ms, 1, ' ms'), fixed(v.p99Ms, 1, ' ms')]),
    v.flags.length > 0 ? `WORSE: ${v.flags.join('; ')}` : '',
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  lines.push(line(header), ...rows.map(line));
  if (c.defaultVersion !== null) lines.push(`* the default version; flags compare the others with it`);
  return lines.join('\n');
}

export async function compareCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(COMPARE_OPTIONS, argv, process.env, true, 'compare');
  if (values.help) {
    console.log(
      helpText(
        'compare APP',
        "An app's versions side by side: requests/s, share of the app's requests, 5xx ratio, p50/p99 latency (a mean on HAProxy nodes whose haproxy.cfg predates the latency histogram), over the agent's live window (the last 15-30 s), across the fleet when the agent has Redis. A version clearly worse than the default one is flagged.",
        COMPARE_OPTIONS,
      ),
    );
    return 0;
  }
  const [app, ...extra] = values.positionals;
  if (app === undefined || extra.length > 0) throw new UsageError('usage: edgeroute compare APP [--watch] [--json]');
  const agent = stringOption(values, 'agent') ?? '';
  const token = stringOption(values, 'api-token');
  const intervalMs = numberOption(values, 'interval', 0.2) * 1000;
  const show = async () => {
    const comparison = await readComparison(agent, app, token, values['node-only'] === true);
    if (values.json === true) console.log(JSON.stringify(comparison));
    else console.log(`${values.watch === true && process.stdout.isTTY ? '\x1b[2J\x1b[H' : ''}${formatComparison(comparison)}${values.watch === true ? '\n' : ''}`);
  };
  await show();
  if (values.watch !== true) return 0;
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      show().catch((err: Error) => console.error(`edgeroute compare: ${err.message}`));
    }, intervalMs);
    const stop = () => {
      clearInterval(timer);
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
