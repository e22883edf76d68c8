/**
 * The `edgeroute` system user and group, looked up in (root)/etc/passwd and
 * /etc/group rather than through NSS, so that a scratch or image root answers
 * for itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { underRoot } from './install-layout.js';

export interface AccountIds {
  readonly uid: number;
  readonly gid: number;
}

function entryId(file: string, name: string): number | null {
  if (!existsSync(file)) return null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
  }
  return null;
}

export function userId(root: string, name: string): number | null {
  return entryId(underRoot(root, '/etc/passwd'), name);
}

export function groupId(root: string, name: string): number | null {
  return entryId(underRoot(root, '/etc/group'), name);
}

/** Ids for chown: root is 0:0, anyone else must exist by then. */
export function accountIds(root: string, user: string, group: string): AccountIds | null {
  const uid = user === 'root' ? 0 : userId(root, user);
  const gid = group === 'root' ? 0 : groupId(root, group);
  return uid === null || gid === null ? null : { uid, gid };
}

/**
 * The commands that create the agent's account, none when it exists. A system
 * account with no login shell and no home: the agent only needs an identity
 * that is not root.
 */
export function accountCommands(root: string, name: string): string[][] {
  const commands: string[][] = [];
  if (groupId(root, name) === null) commands.push(['groupadd', '--system', name]);
  if (userId(root, name) === null) {
    commands.push(['useradd', '--system', '--gid', name, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'edgeroute agent', name]);
  }
  return commands;
}
