#!/usr/bin/env node
/** `edgeroute COMMAND [options]`. Exit codes: 0 done, 1 failed, 2 bad usage. */
import { agentCommand } from './agent-command.js';
import { demoCommand } from './demo-command.js';
import { installCommand } from './install-command.js';
import { labelsCommand } from './labels-command.js';
import { haproxyConfCommand } from './haproxy-conf-command.js';
import { nginxConfCommand } from './nginx-conf-command.js';
import { policyCommand } from './policy-command.js';
import { watchCommand } from './watch-command.js';
import { compareCommand } from './compare-command.js';
import { UsageError } from './options.js';
import { EDGEROUTE_VERSION, SHIPPED_PLUGIN_VERSION } from '../version.js';
import { operationCommand, OPERATION_SUMMARIES } from './operations-command.js';

const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<number>; summary: string }> = {
  agent: { run: agentCommand, summary: 'keep a routing node nginx in sync with Marathon' },
  'nginx-conf': { run: nginxConfCommand, summary: 'write the nginx config for a routing node' },
  'haproxy-conf': { run: haproxyConfCommand, summary: 'write the HAProxy config for an HAProxy routing node' },
  policy: { run: policyCommand, summary: 'set, get, list, remove or validate split policies in Redis' },
  watch: { run: watchCommand, summary: "print the agent's live feed (--fleet: the routing nodes)" },
  compare: { run: compareCommand, summary: "an app's versions side by side: requests/s, share, 5xx, p50/p99, fleet-wide" },
  drain: { run: operationCommand('drain'), summary: OPERATION_SUMMARIES.drain as string },
  kill: { run: operationCommand('kill'), summary: OPERATION_SUMMARIES.kill as string },
  scale: { run: operationCommand('scale'), summary: OPERATION_SUMMARIES.scale as string },
  restart: { run: operationCommand('restart'), summary: OPERATION_SUMMARIES.restart as string },
  rollout: { run: operationCommand('rollout'), summary: OPERATION_SUMMARIES.rollout as string },
  demo: { run: demoCommand, summary: 'run a local sandbox: Redis, nginx, a Marathon simulator and the agent' },
  labels: { run: labelsCommand, summary: 'the migration report: how each app routes, what its marathon-lb labels became' },
  install: { run: installCommand, summary: 'make this Debian host a routing node: user, /etc/edgeroute, systemd units, log rotation' },
};

function usage(): string {
  const lines = ['Usage: edgeroute COMMAND [options]', '', 'Commands:'];
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(width)}${command.summary}`);
  lines.push('', 'Run `edgeroute COMMAND --help` for its options, `edgeroute --version` for the release.');
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`edgeroute ${EDGEROUTE_VERSION} (Lua plugin ${SHIPPED_PLUGIN_VERSION}, Node ${process.version})`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`edgeroute: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`edgeroute ${name}: ${err.message}`);
      return 2;
    }
    console.error(`edgeroute ${name}: ${(err as Error).message}`);
    return 1;
  }
}

process.exit(await main(process.argv.slice(2)));
