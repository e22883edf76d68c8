/**
 * edgeroute.tcpPort (L4 on HAProxy nodes) for the fuzzed listings: valid
 * values (a port, `service` with the app's Marathon service port declared),
 * near-valid ones for the mutator, and what the agent must make of them,
 * restated from the label contract (README "Marathon labels": a port 1-65535,
 * or `service`, any case, spaces around) rather than by calling
 * agent/core/labels.ts. An app with only this label is TCP-only: routed on
 * HAProxy nodes, left out of nginx pushes.
 */
import type { Rng } from './prng.js';

export const TCP_PORT_LABEL = 'edgeroute.tcpPort';

const NEAR: readonly string[] = ['', ' ', '0', '65536', '-1', '+80', '80.0', '1e3', '0x50', '80,81', '80 81', 'services', 'servic', 'port', '\uff18\uff10', '99999999999999999999', 'NaN', 'service,80', '"service"'];
const VALID_TEXT: readonly string[] = ['service', 'SERVICE', ' Service ', '1', '65535', ' 5432 ', '080', '443'];

/**
 * Gives a generated routed app (routedApp) a valid edgeroute.tcpPort: its
 * own port (10000 + index, so apps do not collide), or `service` with that
 * port declared as its service port; now and then without vhosts (TCP-only).
 */
export function withTcpPort(rng: Rng, app: Record<string, unknown>, index: number): Record<string, unknown> {
  const labels = app.labels as Record<string, string>;
  const port = 10_000 + index;
  if (rng.chance(0.5)) {
    labels[TCP_PORT_LABEL] = rng.pick([String(port), ` ${port} `, `0${port}`]);
  } else {
    labels[TCP_PORT_LABEL] = rng.pick(['service', 'SERVICE', ' service ']);
    // The service port where the app's mode reads it: portMappings[].servicePort, else portDefinitions[].port.
    const container = app.container as { portMappings?: Array<Record<string, unknown>> } | undefined;
    if (container?.portMappings?.[0]) container.portMappings[0].servicePort = port;
    else app.portDefinitions = [{ port, protocol: 'tcp', name: 'tcp' }];
  }
  if (rng.chance(0.4)) delete labels['edgeroute.vhosts'];
  return app;
}

/** A near-valid (or valid) edgeroute.tcpPort, for the mutator. */
export function tcpPortMutant(rng: Rng): string {
  return rng.chance(0.75) ? rng.pick(NEAR) : rng.pick(VALID_TEXT);
}

export type TcpPortPrediction =
  | { readonly kind: 'port'; readonly port: number }
  /** `service`, and the app declares no service port at its port index: skipped with a problem. */
  | { readonly kind: 'no service port' }
  | { readonly kind: 'bad' };

/** What the agent must make of an app's edgeroute.tcpPort, given its service ports (as the parser read them). */
export function predictTcpPort(raw: string, servicePorts: readonly (number | null)[] | undefined, portIndex: number): TcpPortPrediction {
  const text = raw.trim();
  if (text.toLowerCase() === 'service') {
    const port = servicePorts?.[portIndex] ?? null;
    return port === null ? { kind: 'no service port' } : { kind: 'port', port };
  }
  if (!/^[0-9]+$/.test(text)) return { kind: 'bad' };
  const port = Number(text);
  return port >= 1 && port <= 65_535 ? { kind: 'port', port } : { kind: 'bad' };
}
