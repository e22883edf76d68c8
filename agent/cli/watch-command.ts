/**
 * `edgeroute watch`: prints the agent's live feed, one line per event;
 * `edgeroute watch --fleet`: the routing nodes (/v1/nodes) as a table, again
 * whenever it changes.
 */
import WebSocket from 'ws';
import type { NodeView } from '../core/fleet-view.js';
import { helpText, numberOption, readOptions, stringOption, type OptionSpec } from './options.js';

const WATCH_OPTIONS: readonly OptionSpec[] = [
  { name: 'agent', kind: 'string', default: 'http://127.0.0.1:9090', help: "the agent API's URL" },
  { name: 'json', kind: 'boolean', help: 'print the raw JSON messages' },
  { name: 'api-token', kind: 'string', help: 'the API token, when the agent runs with --api-reads token' },
  { name: 'fleet', kind: 'boolean', help: 'the routing nodes instead: data plane, table and policies against this node, last push, drains awaiting, heartbeat; out-of-step nodes flagged' },
  { name: 'interval', kind: 'string', default: '2', help: 'with --fleet: seconds between readings' },
];

const age = (ms: number | null | undefined) => (ms === null || ms === undefined ? '–' : ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);
const match = (v: boolean | null) => (v === null ? '–' : v ? 'same' : 'DIFFERS');

/** /v1/nodes as a table, one node a line; out-of-step nodes say why. */
export function formatFleet(nodes: readonly NodeView[], now = Date.now()): string {
  const header = ['node', 'plane', 'table', 'vs this', 'policies', 'last push', 'drains', 'heartbeat', 'status'];
  const rows = nodes.map((n) => [
    n.nodeId + (n.self ? ' (this)' : ''),
    n.dataPlane ?? 'nginx',
    n.tableVersion ?? 'none',
    match(n.tableMatches),
    n.policies ? `${n.policies.count} ${match(n.policiesMatch)}` : '–',
    n.lastPushAt ? `${age(now - n.lastPushAt)} ago` : '–',
    String(n.drainsAwaiting),
    `${age(n.heartbeatAgeMs)} ago`,
    n.outOfStep ? `OUT OF STEP: ${n.problems.join('; ')}` : 'in step',
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

async function watchFleet(base: string, token: string | null, json: boolean, intervalMs: number): Promise<number> {
  let last = '';
  const read = async (): Promise<boolean> => {
    const res = await fetch(`${base}/v1/nodes`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
    const body = (await res.json().catch(() => ({}))) as { nodes?: NodeView[]; error?: string };
    if (!res.ok) {
      console.error(`edgeroute watch --fleet: ${base}/v1/nodes answered HTTP ${res.status}: ${body.error ?? ''}`);
      return false;
    }
    const nodes = body.nodes ?? [];
    // Ages change every reading: a new table only when something else did.
    const shape = JSON.stringify(nodes.map((n) => [n.nodeId, n.tableVersion, n.tableMatches, n.policies, n.policiesMatch, n.drainsAwaiting, n.problems.map((p) => p.replace(/\d+ s/g, '')), n.lastPushAt]));
    if (shape === last) return true;
    last = shape;
    if (json) console.log(JSON.stringify(body));
    else console.log(`${new Date().toISOString().slice(11, 19)} ${nodes.length} node${nodes.length === 1 ? '' : 's'}, ${nodes.filter((n) => n.outOfStep).length} out of step\n${formatFleet(nodes)}\n`);
    return true;
  };
  if (!(await read().catch((err: Error) => (console.error(`edgeroute watch --fleet: cannot read ${base}/v1/nodes: ${err.message}`), false)))) return 1;
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => void read().catch((err: Error) => console.error(`edgeroute watch --fleet: ${err.message}`)), intervalMs);
    const stop = () => {
      clearInterval(timer);
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

interface Message {
  type: string;
  at: string;
  [key: string]: unknown;
}

export function describe(message: Message): string {
  const time = message.at.slice(11, 23);
  switch (message.type) {
    case 'hello':
      return `${time} connected; table ${String(message.version)}${message.dataPlane ? ` (${String(message.dataPlane)} node)` : ''}`;
    case 'routing-changed':
      return `${time} routing changed: ${(message.changed as string[]).join(', ') || '-'}${(message.removed as string[]).length ? `; removed ${(message.removed as string[]).join(', ')}` : ''}`;
    case 'published':
      return `${time} published   ${String(message.app)} ${String(message.version)} ${String(message.taskId)}`;
    case 'unpublished':
      return `${time} unpublished ${String(message.app)} ${String(message.version)} ${String(message.taskId)} (${String(message.reason)})`;
    case 'policy-changed':
      return `${time} policy changed: ${String(message.app)}`;
    case 'error':
      return `${time} ERROR ${String(message.message)}`;
    default:
      return `${time} ${message.type} ${JSON.stringify(message)}`;
  }
}

export async function watchCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(WATCH_OPTIONS, argv, process.env, false, 'watch');
  if (values.help) {
    console.log(helpText('watch', "Prints the agent's live feed: routing changes, publications, policy changes, errors; with --fleet, the routing nodes, whenever they change. Ctrl-C stops.", WATCH_OPTIONS));
    return 0;
  }
  if (values.fleet === true) {
    return watchFleet((stringOption(values, 'agent') ?? '').replace(/\/+$/, ''), stringOption(values, 'api-token'), values.json === true, numberOption(values, 'interval', 0.2) * 1000);
  }
  const base = (stringOption(values, 'agent') ?? '').replace(/\/+$/, '').replace(/^http/, 'ws');
  const token = stringOption(values, 'api-token');
  const socket = token ? new WebSocket(`${base}/v1/events`, { headers: { authorization: `Bearer ${token}` } }) : new WebSocket(`${base}/v1/events`);
  return new Promise<number>((resolve) => {
    socket.on('message', (data) => {
      const text = data.toString();
      if (values.json) console.log(text);
      else {
        try {
          console.log(describe(JSON.parse(text) as Message));
        } catch {
          console.log(text);
        }
      }
    });
    socket.on('error', (err) => {
      console.error(`edgeroute watch: cannot follow ${base}/v1/events: ${err.message}`);
      resolve(1);
    });
    socket.on('close', () => resolve(0));
    process.once('SIGINT', () => socket.close());
    process.once('SIGTERM', () => socket.close());
  });
}
