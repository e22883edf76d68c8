/**
 * `edgeroute install --config FILE`: turns a Debian host with the system
 * packages (scripts/system-deps.sh) into a routing node: the edgeroute user,
 * /etc/edgeroute, nginx's folder, the systemd units, log rotation, Debian's
 * own nginx.service out of the way, and the units running. Safe to run again:
 * it changes only what differs, which is how a changed config is applied.
 */
import { execa } from 'execa';
import { join, resolve } from 'node:path';
import { applyDirs, applyFiles, type ApplyOptions, type FileOutcome } from '../install/apply-files.js';
import { INSTALL_LAYOUT } from '../install/install-layout.js';
import { planInstall } from '../install/install-plan.js';
import { planHaproxyInstall } from '../install/haproxy-install-plan.js';
import { hiddenFromOthers } from '../install/readable-by-others.js';
import { FRESH_NODE, LIVE_SYSTEMD, serviceSteps, systemdRunning } from '../install/service-steps.js';
import { accountCommands, accountIds } from '../install/system-account.js';
import { LUA_DIR } from '../project-paths.js';
import { helpText, readOptions, stringOption, UsageError, type OptionSpec } from './options.js';

export const INSTALL_OPTIONS: readonly OptionSpec[] = [
  { name: 'root', kind: 'string', default: '/', help: 'write every file under this folder instead of / (an image build, a test); useradd and systemctl are printed, not run' },
  { name: 'dry-run', kind: 'boolean', help: 'print every file it would write (path, mode, owner) and every command it would run; change nothing' },
  { name: 'data-plane', kind: 'string', default: 'nginx', help: 'nginx (the config\'s "nginx-conf" section) or haproxy (its "haproxy-conf" section: edgeroute-haproxy.service, and the agent with --haproxy-socket)' },
];

const SUMMARY = `Makes this Debian host a routing node from the config file (see nginx/edgeroute.json, or nginx/edgeroute-haproxy.json with --data-plane haproxy): the ${INSTALL_LAYOUT.user} user, ${INSTALL_LAYOUT.etcDir}/, the systemd units, log rotation; disables Debian's nginx.service (haproxy.service); starts the units.`;

export async function installCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(INSTALL_OPTIONS, argv, process.env, false, 'install');
  if (values.help) {
    console.log(helpText('install', SUMMARY, INSTALL_OPTIONS));
    return 0;
  }
  const configFile = stringOption(values, 'config');
  const dataPlane = stringOption(values, 'data-plane') ?? 'nginx';
  if (dataPlane !== 'nginx' && dataPlane !== 'haproxy') throw new UsageError(`--data-plane must be nginx or haproxy, got "${dataPlane}"`);
  if (!configFile) throw new UsageError(`--config FILE is required: the routing node's config, with "${dataPlane}-conf" and "agent" sections`);
  const root = resolve(stringOption(values, 'root') ?? '/');
  const dryRun = values['dry-run'] === true;
  // Only on the node itself, for real, do commands run and owners change.
  const live = root === '/';
  if (live && !dryRun && process.getuid?.() !== 0) throw new Error('run as root (or try --dry-run, or --root DIR)');

  const plan = dataPlane === 'haproxy' ? planHaproxyInstall(configFile, root) : planInstall(configFile, root);
  const say = (line: string) => console.log(line);
  say(`edgeroute install${dryRun ? ' (dry run: nothing is changed)' : ''}${live ? '' : `, under ${root}`}:`);

  const unreachable = [plan.paths.node, plan.paths.bin, join(LUA_DIR, 'edgeroute', 'plugin.lua')].map(hiddenFromOthers).find((path) => path !== null);
  if (unreachable) {
    const problem = `${unreachable} is not readable by others: the agent (user ${INSTALL_LAYOUT.user}) and nginx's workers (nobody) could not run the package; install Node and edgeroute system-wide (npm install -g)`;
    if (live && !dryRun) throw new Error(problem);
    say(`  warning  ${problem}`);
  }

  let actions = 0;
  const command = async (argv: readonly string[], skipReason: string | null) => {
    const text = shellText(argv);
    if (skipReason) return say(`  not run  ${text}   (${skipReason})`);
    actions += 1;
    if (dryRun) return say(`  would run  ${text}`);
    say(`  run      ${text}`);
    await execa(argv[0] as string, argv.slice(1), { stdio: 'inherit' });
  };

  const accountSkip = live ? null : '--root: on the node itself';
  for (const argv of accountCommands(root, INSTALL_LAYOUT.user)) await command(argv, accountSkip);

  const options: ApplyOptions = { root, dryRun, ids: (owner) => (live ? accountIds(root, owner.user, owner.group) : null) };
  const outcomes = [...applyDirs(plan.dirs, options), ...applyFiles(plan.files, options)];
  for (const outcome of outcomes) {
    if (outcome.difference) actions += 1;
    say(`  ${describe(outcome, dryRun)}`);
  }

  const running = live && systemdRunning();
  const stepsSkip = !live ? '--root: on the node itself' : !running ? 'systemd is not running here' : null;
  for (const argv of await serviceSteps(outcomes, running ? LIVE_SYSTEMD : FRESH_NODE, plan.dataPlane)) await command(argv, stepsSkip);

  if (actions === 0) say('edgeroute install: nothing to change; the node is as the config file says.');
  else if (dryRun) say(`edgeroute install: would make ${actions} change(s); run again without --dry-run to make them.`);
  else say(`edgeroute install: made ${actions} change(s).`);
  if (!dryRun && running) say(`check with: systemctl status ${plan.units.join(' ')}`);
  return 0;
}

function describe(outcome: FileOutcome, dryRun: boolean): string {
  const verb = outcome.difference === null ? 'keep' : outcome.difference === 'mode' ? 'chmod' : outcome.difference === 'owner' ? 'chown' : outcome.kind === 'dir' ? 'mkdir' : 'write';
  const why = outcome.difference === 'new' ? '  (new)' : outcome.difference === 'content' ? '  (changed)' : '';
  const mode = outcome.mode.toString(8).padStart(4, '0');
  return `${dryRun && verb !== 'keep' ? `would ${verb}` : verb.padEnd(8)} ${outcome.target}  ${mode} ${outcome.owner.user}:${outcome.owner.group}${why}`;
}

/** The command as one would type it: arguments with spaces quoted. */
function shellText(argv: readonly string[]): string {
  return argv.map((arg) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
