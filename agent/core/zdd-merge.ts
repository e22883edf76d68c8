/**
 * marathon-lb's zero-downtime deployments (zdd.py): two Marathon apps, the
 * colours of one HAPROXY_DEPLOYMENT_GROUP, served as one app whose backends
 * are both colours' tasks, the old colour's drained as the new one's become
 * healthy. marathon-lb (get_apps) marks N old tasks "draining" (HAProxy's
 * disabled servers), the first N by id, with
 *   N = min(old tasks, healthy new tasks, max(0, healthy new + old instances - target)),
 * target being the new colour's HAPROXY_DEPLOYMENT_TARGET_INSTANCES when it
 * carries HAPROXY_DEPLOYMENT_NEW_INSTANCES, else 1; the new colour is the one
 * with the later HAPROXY_DEPLOYMENT_STARTED_AT. Here the drained tasks leave
 * the upstream (their requests in flight finish). One departure from
 * marathon-lb: "old instances" is at least the old colour's tasks still
 * listed, so scaling the old colour down (to 0, say) does not put its drained
 * tasks back in the upstream while Mesos is still killing them (they would
 * take requests and die under them). Pure.
 */
import type { BackendStatus } from './routing-table.js';
import type { VersionCandidate } from './judge-app.js';

/** What one colour says of its deployment. */
export interface DeploymentMark {
  /** HAPROXY_DEPLOYMENT_GROUP. */
  readonly group: string;
  /** HAPROXY_DEPLOYMENT_STARTED_AT in ms; null when absent or unreadable (the oldest). */
  readonly startedAt: number | null;
  /** The target marathon-lb drains towards (see above). */
  readonly targetInstances: number;
  /** The Marathon app's instances. */
  readonly instances: number;
  /** Its tasks' ids, sorted: the old colour's first N are drained. */
  readonly taskIds: readonly string[];
}

export function isDeployment(candidate: VersionCandidate): candidate is VersionCandidate & { deployment: DeploymentMark } {
  return candidate.deployment !== undefined;
}

/** The colours of one deployment group (same logical app and version), oldest first, merged into one candidate. */
export function mergeColours(colours: ReadonlyArray<VersionCandidate & { deployment: DeploymentMark }>): VersionCandidate {
  const ordered = [...colours].sort((a, b) => (a.deployment.startedAt ?? -Infinity) - (b.deployment.startedAt ?? -Infinity) || (a.marathonAppId < b.marathonAppId ? -1 : 1));
  let merged = ordered[0] as VersionCandidate & { deployment: DeploymentMark };
  for (const next of ordered.slice(1)) merged = mergePair(merged, next);
  return merged;
}

function mergePair(old: VersionCandidate & { deployment: DeploymentMark }, next: VersionCandidate & { deployment: DeploymentMark }): VersionCandidate & { deployment: DeploymentMark } {
  const healthyNew = next.backends.length;
  // Instances drop at once on a scale-down, tasks only once killed: counting the listed ones keeps a drained task drained until it is gone.
  const oldInstances = Math.max(old.deployment.instances, old.deployment.taskIds.length);
  const drainable = Math.max(0, healthyNew + oldInstances - next.deployment.targetInstances);
  const count = Math.min(old.deployment.taskIds.length, healthyNew, drainable);
  const drained = new Set(old.deployment.taskIds.slice(0, count));
  const reason = `draining: blue/green deployment ${next.deployment.group}, replaced by ${next.marathonAppId}`;
  return {
    ...next,
    backends: [...old.backends.filter((b) => !drained.has(b.id)), ...next.backends],
    statuses: () => [...old.statuses().map((s): BackendStatus => (drained.has(s.taskId) ? { ...s, state: 'draining', reason, weight: 0 } : s)), ...next.statuses()],
    deployment: { ...next.deployment, taskIds: [...old.deployment.taskIds.filter((id) => !drained.has(id)), ...next.deployment.taskIds] },
  };
}
