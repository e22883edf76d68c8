// A TCP port another process on the node listens on: read from the kernel's
// tables, told apart from HAProxy's own listeners, one warning per app.
import { describe, expect, it } from 'vitest';
import { otherListeners, parseProcNetTcp, PortClashes, type Listener } from '../../agent/dataplane/haproxy/port-clashes.js';
import { captureLog } from '../helpers/log-capture.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 5001 1 0000000000000000 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0
   2: 0100007F:9C40 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 5003 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2710 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6002 1 0000000000000000 100 0 0 10 0
`;

describe('parseProcNetTcp', () => {
  it('reads the listening sockets only, with their addresses in ss notation', () => {
    expect(parseProcNetTcp(TCP)).toEqual([
      { address: '127.0.0.1', port: 5432, inode: 5001 },
      { address: '*', port: 80, inode: 5002 },
    ]);
    expect(parseProcNetTcp(TCP6)).toEqual([
      { address: '[::1]', port: 8080, inode: 6001 },
      { address: '127.0.0.1', port: 10000, inode: 6002 },
    ]);
  });
});

describe('otherListeners', () => {
  const l = (address: string, port: number, inode: number): Listener => ({ address, port, inode });
  const range = { from: 10000, to: 10002 };
  // HAProxy binds 127.0.0.1 on each port of the range.
  const haproxy = [l('127.0.0.1', 10000, 1), l('127.0.0.1', 10001, 2), l('127.0.0.1', 10002, 3)];

  it('outside the range: every listener on the port', () => {
    expect(otherListeners([...haproxy, l('127.0.0.1', 5432, 9)], 5432, range)).toEqual([l('127.0.0.1', 5432, 9)]);
    expect(otherListeners([l('*', 5432, 9)], 5432, null)).toEqual([l('*', 5432, 9)]);
    expect(otherListeners(haproxy, 5432, range)).toEqual([]);
  });

  it("inside the range: only what is more than HAProxy's address on every port", () => {
    expect(otherListeners(haproxy, 10001, range)).toEqual([]);
    // Another address on this port only.
    expect(otherListeners([...haproxy, l('127.0.0.2', 10001, 8)], 10001, range)).toEqual([l('127.0.0.2', 10001, 8)]);
    // A second socket on HAProxy's own address (SO_REUSEPORT).
    expect(otherListeners([...haproxy, l('127.0.0.1', 10001, 7)], 10001, range)).toEqual([l('127.0.0.1', 10001, 7)]);
  });

  it("inside the range, with HAProxy's listeners out of view: nothing can be told", () => {
    expect(otherListeners([l('127.0.0.2', 10001, 8)], 10001, range)).toEqual([]);
  });
});

describe('PortClashes', () => {
  it('warns once per app and holder, naming the app, the port and who listens', async () => {
    const logs = captureLog();
    let listeners: Listener[] = [{ address: '127.0.0.1', port: 5432, inode: 42 }];
    const clashes = new PortClashes(logs.log, { maxAgeMs: 0, read: async () => listeners, owners: async () => new Map([[42, 'pid 7 postgres']]) });
    await clashes.refresh([5432], null);
    expect(clashes.taken('/db', 5432)).toBe(true);
    await clashes.refresh([5432], null);
    expect(clashes.taken('/db', 5432)).toBe(true);
    const warnings = logs.lines().filter((line) => line.app === '/db');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toBe('app /db asks for TCP port 5432 (edgeroute.tcpPort), but another process on this node already listens on it (127.0.0.1:5432 (pid 7 postgres)): the port is not routed on this node');
    // Gone: not taken any more, and a new holder warns again.
    listeners = [];
    await clashes.refresh([5432], null);
    expect(clashes.taken('/db', 5432)).toBe(false);
    listeners = [{ address: '127.0.0.1', port: 5432, inode: 42 }];
    await clashes.refresh([5432], null);
    clashes.taken('/db', 5432);
    expect(logs.lines().filter((line) => line.app === '/db')).toHaveLength(2);
  });

  it('warns for a routed port inside the range only', async () => {
    const logs = captureLog();
    const range = { from: 10000, to: 10001 };
    const listeners: Listener[] = [
      { address: '127.0.0.1', port: 10000, inode: 1 },
      { address: '127.0.0.1', port: 10001, inode: 2 },
      { address: '127.0.0.2', port: 10001, inode: 3 },
      { address: '127.0.0.1', port: 20000, inode: 4 },
    ];
    const clashes = new PortClashes(logs.log, { read: async () => listeners, owners: async () => new Map() });
    await clashes.refresh([10000, 10001, 20000], range);
    clashes.routed('/a', 10000, range);
    clashes.routed('/b', 10001, range);
    // 20000: a port a reload bound outside the range: HAProxy's own listener, not checked.
    clashes.routed('/c', 20000, range);
    expect(logs.lines().filter((line) => line.level === 40).map((line) => [line.app, line.msg])).toEqual([
      ['/b', "app /b's TCP port 10001 (edgeroute.tcpPort) is also listened on by another process on this node (127.0.0.2:10001): connections it accepts do not reach the app"],
    ]);
  });
});
