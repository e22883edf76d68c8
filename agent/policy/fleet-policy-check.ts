/**
 * A policy is checked against the fleet that will run it: with HAProxy
 * routing nodes live in it (the node registry records each node's data
 * plane), what they cannot honour (haproxy-support.ts) is refused, never
 * silently ignored on those nodes.
 */
import type { Redis } from 'ioredis';
import { readFleet, type FleetNode } from '../fleet/node-registry.js';
import { haproxyPolicyProblems } from './haproxy-support.js';
import type { Policy } from './policy-check.js';

/** The live HAProxy nodes among `nodes`, by id. */
export function haproxyNodes(nodes: readonly FleetNode[]): string[] {
  return nodes.filter((n) => n.live && n.dataPlane === 'haproxy').map((n) => n.nodeId);
}

export async function liveHaproxyNodes(redis: Redis, prefix: string): Promise<string[]> {
  return haproxyNodes(await readFleet(redis, prefix));
}

/** Errors for a checked policy, given the HAProxy nodes in the fleet. */
export function fleetProblems(policy: Policy, haproxy: readonly string[]): string[] {
  if (haproxy.length === 0) return [];
  const named = haproxy.length > 3 ? `${haproxy.slice(0, 3).join(', ')} and ${haproxy.length - 3} more` : haproxy.join(', ');
  return haproxyPolicyProblems(policy).map((p) => `${p} (HAProxy nodes in the fleet: ${named})`);
}
