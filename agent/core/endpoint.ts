/** Where a task serves HTTP, read the way Marathon describes each network mode. */
import type { MarathonApp, MarathonTask } from './marathon-types.js';

export type Endpoint = { ok: true; host: string; port: number } | { ok: false; message: string };

export function taskEndpoint(app: MarathonApp, task: MarathonTask, portIndex: number): Endpoint {
  if (app.networkMode === 'container') {
    const containerPort = app.ports[portIndex]?.containerPort;
    const address = task.ipAddresses[0];
    if (address !== undefined && containerPort) return { ok: true, host: address, port: containerPort };
  }
  // Host and bridge networking, and container networking with mapped host ports:
  // the task's own `ports` are the host ports Mesos allocated.
  const hostPort = task.ports[portIndex];
  if (hostPort !== undefined && task.host !== '') return { ok: true, host: task.host, port: hostPort };
  return { ok: false, message: `task ${task.id} has no port at index ${portIndex}` };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

export function isIpAddress(host: string): boolean {
  return IPV4.test(host) || (host.includes(':') && IPV6.test(host));
}
