/**
 * Every routing node beside this one: does it apply the same routing table
 * and the same split policies, is its agent alive, which drains wait for its
 * acknowledgement. A node out of step says why, in words. Pure: the
 * heartbeats, the drain marks and the clock come in.
 */

/** What a node's agent writes at each heartbeat (fleet/node-registry.ts keeps it in Redis). */
export interface NodeInfo {
  readonly nodeId: string;
  readonly heartbeatAt: number;
  readonly startedAt: number;
  /** The table this node's data plane holds. */
  readonly tableVersion: string | null;
  readonly apiUrl: string | null;
  /** Which data plane the node drives ('nginx', 'haproxy'); absent from agents older than the field. */
  readonly dataPlane?: string;
  /** The routing group it routes (--group); null: apps without one. Absent from older agents. */
  readonly group?: string | null;
  /** How often the node beats, ms (absent from older agents). */
  readonly heartbeatMs?: number;
  /** When its data plane last took a routing change (ms); null: not since the agent started. */
  readonly lastPushAt?: number | null;
  /** The split policies its data plane applies: how many, and a digest of them all; null when it does not say. */
  readonly policies?: { readonly count: number; readonly digest: string } | null;
  /** Set by an agent that stopped (ms): the node no longer counts. */
  readonly stoppedAt?: number;
}

/** A node's heartbeat as the registry reads it: live while it beats within the TTL and has not stopped. */
export interface NodeHeartbeat extends NodeInfo {
  readonly live: boolean;
}

/** A drain mark and the nodes that acknowledged it. */
export interface DrainAcks {
  readonly taskId: string;
  readonly acks: Readonly<Record<string, { readonly inflight: number; readonly settled: boolean }>>;
}

export interface NodeView extends NodeHeartbeat {
  /** The node serving this view. */
  readonly self: boolean;
  readonly heartbeatAgeMs: number;
  /** Its table is this node's; null when either holds none, or it routes another group (another table by design). */
  readonly tableMatches: boolean | null;
  /** Its split policies are this node's; null when either does not say. */
  readonly policiesMatch: boolean | null;
  /** Drain marks still waiting for this node (no acknowledgement, or requests still in flight). */
  readonly drainsAwaiting: number;
  readonly outOfStep: boolean;
  /** Why it is out of step. */
  readonly problems: readonly string[];
}

/** A heartbeat this many periods late is flagged before the TTL makes the node stop counting. */
export const LATE_HEARTBEATS = 3;
const DEFAULT_HEARTBEAT_MS = 2_000;

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

export function fleetView(
  nodes: readonly NodeHeartbeat[],
  self: { readonly nodeId: string; readonly group: string | null; readonly tableVersion: string | null; readonly policies: { readonly digest: string } | null },
  drains: readonly DrainAcks[],
  now: number,
): NodeView[] {
  return nodes.map((node) => {
    const isSelf = node.nodeId === self.nodeId;
    const age = Math.max(0, now - node.heartbeatAt);
    const sameGroup = (node.group ?? null) === self.group;
    const tableMatches = !sameGroup || node.tableVersion === null || self.tableVersion === null ? null : node.tableVersion === self.tableVersion;
    const policiesMatch = !sameGroup || node.policies == null || self.policies === null ? null : node.policies.digest === self.policies.digest;
    const drainsAwaiting = node.live
      ? drains.filter((d) => {
          const ack = d.acks[node.nodeId];
          return ack === undefined || ack.inflight > 0 || !ack.settled;
        }).length
      : 0;
    const problems: string[] = [];
    if (node.stoppedAt !== undefined) problems.push(`agent stopped ${seconds(now - node.stoppedAt)} ago; its data plane keeps the last table`);
    else if (!node.live) problems.push(`no heartbeat for ${seconds(age)}`);
    else if (age > LATE_HEARTBEATS * (node.heartbeatMs ?? DEFAULT_HEARTBEAT_MS)) problems.push(`heartbeat ${seconds(age)} old`);
    if (node.tableVersion === null) problems.push('its data plane holds no routing table');
    else if (tableMatches === false) problems.push(`table ${node.tableVersion}, not ${self.tableVersion}`);
    if (policiesMatch === false) problems.push('applies other split policies');
    return { ...node, self: isSelf, heartbeatAgeMs: age, tableMatches, policiesMatch, drainsAwaiting, outOfStep: problems.length > 0, problems };
  });
}

/** The digest of a node's split policies: app → md5 of each policy's text, in one string. */
export function policiesSummary(digests: ReadonlyMap<string, string | null> | null | undefined, md5: (text: string) => string): { count: number; digest: string } | null {
  if (!digests) return null;
  const lines = [...digests].filter(([, d]) => d !== null).map(([app, d]) => `${app}\t${d}`).sort();
  return { count: lines.length, digest: md5(lines.join('\n')).slice(0, 12) };
}
