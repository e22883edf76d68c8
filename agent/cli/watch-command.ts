/** `edgeroute watch`: prints the agent's live feed, one line per event. */
import WebSocket from 'ws';
import { helpText, readOptions, stringOption, type OptionSpec } from './options.js';

const WATCH_OPTIONS: readonly OptionSpec[] = [
  { name: 'agent', kind: 'string', default: 'http://127.0.0.1:9090', help: "the agent API's URL" },
  { name: 'json', kind: 'boolean', help: 'print the raw JSON messages' },
  { name: 'api-token', kind: 'string', help: 'the API token, when the agent runs with --api-reads token' },
];

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
    console.log(helpText('watch', "Prints the agent's live feed: routing changes, publications, policy changes, errors. Ctrl-C stops.", WATCH_OPTIONS));
    return 0;
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
