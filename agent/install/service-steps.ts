/**
 * The systemctl commands that put the units to work: only those the node's
 * state calls for, so that a second run runs none. Asks systemd (read-only)
 * what is enabled and active; under --root, where there is no systemd to
 * ask, lists what the node will need.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import type { FileOutcome } from './apply-files.js';
import { AGENT_UNIT, NGINX_DATA_PLANE, STOCK_SERVICES, type DataPlaneUnit } from './system-files.js';

export interface ServiceState {
  enabled(unit: string): Promise<boolean>;
  active(unit: string): Promise<boolean>;
}

/** systemd's answers; `is-enabled` and `is-active` change nothing. */
export const LIVE_SYSTEMD: ServiceState = {
  enabled: async (unit) => (await execa('systemctl', ['is-enabled', '--quiet', unit], { reject: false })).exitCode === 0,
  active: async (unit) => (await execa('systemctl', ['is-active', '--quiet', unit], { reject: false })).exitCode === 0,
};

/** What a node that has never run the units looks like (--root: an image being built, or a test). */
export const FRESH_NODE: ServiceState = {
  enabled: async () => false,
  active: async (unit) => Object.values(STOCK_SERVICES).some((stock) => stock.includes(unit)),
};

export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/** `dataPlane`: the unit of the node's data plane (nginx, or HAProxy), started before the agent. */
export async function serviceSteps(outcomes: readonly FileOutcome[], state: ServiceState, dataPlane: DataPlaneUnit = NGINX_DATA_PLANE): Promise<string[][]> {
  const changed = (role: FileOutcome['role'], unit?: string) =>
    outcomes.some((o) => o.difference !== null && o.role === role && (unit === undefined || o.target.endsWith(`/${unit}`)));
  const steps: string[][] = [];
  if (changed('unit')) steps.push(['systemctl', 'daemon-reload']);

  // Debian's nginx-extras (haproxy) enables and starts its own nginx (HAProxy) on port 80.
  for (const stock of STOCK_SERVICES[dataPlane.unit] ?? []) {
    if ((await state.enabled(stock)) || (await state.active(stock))) steps.push(['systemctl', 'disable', '--now', stock]);
  }

  const units = [dataPlane.unit, AGENT_UNIT];
  const toEnable = [];
  for (const unit of units) if (!(await state.enabled(unit))) toEnable.push(unit);
  if (toEnable.length > 0) steps.push(['systemctl', 'enable', ...toEnable]);

  // nginx (HAProxy) only reloads: a restart would close its listening
  // sockets. A changed unit file takes effect at its next restart.
  if (!(await state.active(dataPlane.unit))) steps.push(['systemctl', 'start', dataPlane.unit]);
  else if (changed(dataPlane.role)) steps.push(['systemctl', 'reload', dataPlane.unit]);
  // The agent restarts in a second and resyncs; nginx keeps routing meanwhile.
  if (!(await state.active(AGENT_UNIT))) steps.push(['systemctl', 'start', AGENT_UNIT]);
  else if (changed('agent') || changed('unit', AGENT_UNIT)) steps.push(['systemctl', 'restart', AGENT_UNIT]);
  return steps;
}
