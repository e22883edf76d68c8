/** Memory of a process, from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** kB fields of /proc/PID/status, in MB: VmRSS now, VmHWM the peak. */
export function memoryMb(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) / 1024;
  return { rssMb: Math.round(field('VmRSS')), peakRssMb: Math.round(field('VmHWM')) };
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The process and all its descendants, summed (the agent's bin re-launches node with V8 flags). */
export function treeMemoryMb(pid: number): { rssMb: number; peakRssMb: number; processes: number } {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) pids.push(...children(pids[i] as number));
  let rssMb = 0;
  let peakRssMb = 0;
  for (const p of pids) {
    try {
      const m = memoryMb(p);
      rssMb += m.rssMb;
      peakRssMb += m.peakRssMb;
    } catch {
      // exited meanwhile
    }
  }
  return { rssMb, peakRssMb, processes: pids.length };
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  const { userMs, systemMs } = cpuTimesMs(pid);
  return userMs + systemMs;
}

/**
 * User and system CPU time apart, in milliseconds. User time is the process's
 * own code (nginx, Lua); system time also takes the loopback's packet work
 * that the kernel charges to whichever process is running, so on a shared
 * machine it carries other processes' traffic too.
 */
export function cpuTimesMs(pid: number): { userMs: number; systemMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) in parentheses: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return { userMs: (Number(fields[11]) * 1000) / ticksPerSecond, systemMs: (Number(fields[12]) * 1000) / ticksPerSecond };
}
