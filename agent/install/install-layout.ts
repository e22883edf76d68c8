/** Where `edgeroute install` puts a routing node's files, as seen on the node (before --root). */
import { join } from 'node:path';

export const INSTALL_LAYOUT = {
  /** The system user and group the agent runs as. */
  user: 'edgeroute',
  etcDir: '/etc/edgeroute',
  configFile: '/etc/edgeroute/edgeroute.json',
  /** Secrets for the agent's unit (EnvironmentFile=): readable by root and the edgeroute group only. */
  envFile: '/etc/edgeroute/agent.env',
  /** nginx's prefix when the config file's "nginx-conf" section has no "out". */
  defaultNginxPrefix: '/etc/edgeroute/nginx',
  /**
   * The agent's only writable folder (its unit's StateDirectory=), where it
   * keeps the routing snapshot that nginx loads at start. Not under /etc:
   * a folder the agent may write must not hold what root's nginx executes.
   */
  stateDir: '/var/lib/edgeroute',
  unitDir: '/etc/systemd/system',
  logrotateFile: '/etc/logrotate.d/edgeroute',
} as const;

/** `path` on the node, written under `root` (/ on the node itself; a scratch or image folder otherwise). */
export function underRoot(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}
