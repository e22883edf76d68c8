/**
 * Which labels an app is routed by: its edgeroute.* labels, or, on an agent
 * with --marathon-lb-labels, its marathon-lb labels said in edgeroute.* terms
 * (marathon-lb-labels.ts), with a warning for each that cannot be honoured.
 */
import { marathonLbProblems, readMarathonLbLabels, readsMarathonLbLabels } from './marathon-lb-labels.js';
import type { InputProblem, MarathonApp } from './marathon-types.js';
import type { RoutingConfig } from './routing-table.js';
import type { DeploymentMark } from './zdd-merge.js';

const NONE: Readonly<Record<string, string>> = Object.freeze({});

export interface LabelSource {
  readonly labels: Readonly<Record<string, string>>;
  /** A colour of a zdd blue/green deployment (marathon-lb labels only), to merge with the other. */
  readonly deployment: Omit<DeploymentMark, 'instances' | 'taskIds'> | null;
}

export function labelsOf(app: MarathonApp, config: RoutingConfig, problems: InputProblem[]): LabelSource {
  if (!config.marathonLbLabels || !readsMarathonLbLabels(app.labels, config.group)) return { labels: app.labels, deployment: null };
  const reading = readMarathonLbLabels(app, config.group);
  // Warnings only where this agent routes a port of the app (other groups' agents warn for theirs).
  if (reading.ports.some((p) => p.selected)) problems.push(...marathonLbProblems(app.id, reading.readings));
  return { labels: reading.labels ?? NONE, deployment: reading.deployment };
}
