/**
 * Several ports per app: `edgeroute.port.N.<label>` gives port index N a
 * route of its own (for example HTTP vhosts on port 0 and a TCP service port
 * on port 1). The app's plain labels stay the shorthand for port
 * `edgeroute.portIndex`; port N takes the per-route labels (vhosts, tcpPort,
 * tcpBind, group, path and the route settings) from its own prefix only, and the
 * per-app ones (app, version, weight, publishDelaySeconds, warmupSeconds)
 * from the app. Its route is the logical app `<app>:N`.
 */
import { LABEL, readRoutingLabels, type LabelsResult } from './labels.js';
import { ROUTE_LABEL } from './route-settings.js';

export const PORT_LABEL_PREFIX = 'edgeroute.port.';
const PORT_LABEL = /^edgeroute\.port\.(\d{1,4})\.(.+)$/;
const MAX_PORT_INDEX = 1000;

/** What port N may set: its route. */
const PER_PORT = new Set<string>([LABEL.vhosts, LABEL.tcpPort, LABEL.tcpBind, LABEL.group, ...Object.values(ROUTE_LABEL)]);
/** What port N shares with the app. */
const PER_APP = [LABEL.app, LABEL.version, LABEL.weight, LABEL.publishDelaySeconds, LABEL.warmupSeconds] as const;

export interface PortLabels {
  readonly index: number;
  /** As readRoutingLabels reads the app's own labels; a message names the port's label. */
  readonly result: LabelsResult;
}

/** The logical app of port N's route. */
export function portAppKey(appKey: string, index: number): string {
  return `${appKey}:${index}`;
}

/** Every port the app labels with edgeroute.port.N.*, by index. */
export function readPortLabels(labels: Readonly<Record<string, string>>, mainPortIndex: number | null): PortLabels[] {
  const byIndex = new Map<number, Record<string, string>>();
  const refused = new Map<number, string>();
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(PORT_LABEL_PREFIX)) continue;
    const match = PORT_LABEL.exec(key);
    const index = match ? Number(match[1]) : NaN;
    if (!match || !(index <= MAX_PORT_INDEX)) {
      refused.set(-1, `${key} is not edgeroute.port.N.<label> with a port index N from 0 to ${MAX_PORT_INDEX}`);
      continue;
    }
    const own = `edgeroute.${match[2]}`;
    if (!PER_PORT.has(own)) {
      refused.set(index, `${key}: ${own} is ${(PER_APP as readonly string[]).includes(own) ? "the app's, not a port's" : 'not a per-port label'}`);
      continue;
    }
    let port = byIndex.get(index);
    if (!port) {
      port = {};
      byIndex.set(index, port);
    }
    port[own] = value;
  }
  const ports: PortLabels[] = [];
  for (const index of new Set([...byIndex.keys(), ...refused.keys()])) {
    const message = refused.get(index);
    if (message !== undefined) {
      ports.push({ index, result: { ok: false, message } });
      continue;
    }
    if (index === mainPortIndex) {
      ports.push({ index, result: { ok: false, message: `${PORT_LABEL_PREFIX}${index}.* names the app's own port (${LABEL.portIndex}=${index}): use the plain labels for it` } });
      continue;
    }
    const own: Record<string, string> = { ...(byIndex.get(index) ?? {}), [LABEL.portIndex]: String(index) };
    for (const key of PER_APP) if (labels[key] !== undefined) own[key] = labels[key] as string;
    // A port without a group of its own is in the app's.
    if (own[LABEL.group] === undefined && labels[LABEL.group] !== undefined) own[LABEL.group] = labels[LABEL.group] as string;
    const result = readRoutingLabels(own);
    ports.push({ index, result: result.ok ? result : { ok: false, message: `${PORT_LABEL_PREFIX}${index}.${result.message.replace(/^edgeroute\./, '')}` } });
  }
  return ports.sort((a, b) => a.index - b.index);
}
