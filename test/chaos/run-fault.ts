/** Runs one fault under load and reports what the clients saw. */
import { waitFor } from '../../agent/sandbox/wait.js';
import type { LoadReport } from '../helpers/load.js';
import type { ChaosScale, Fault, FaultOutcome } from './faults.js';
import type { ChaosRig } from './rig.js';

export interface FaultResult {
  readonly fault: string;
  readonly sent: number;
  readonly failed: number;
  readonly allowedFailures: number;
  readonly worstMs: number;
  /** Requests the client sent again because nginx closed an idle keep-alive connection under them (never read). */
  readonly staleRetries: number;
  /** The first failures, "status:body" or the error. */
  readonly failures: readonly string[];
  /** nginx error.log lines saying a worker died. */
  readonly workerDeaths: readonly string[];
  readonly note: string;
  readonly seconds: number;
}

export async function runFault(rig: ChaosRig, fault: Fault, scale: ChaosScale): Promise<FaultResult> {
  const started = Date.now();
  const deathsBefore = rig.workerDeaths().length;
  rig.startLoad();
  await waitFor('load to flow', () => (rig.sent() > 50 ? true : undefined), 20_000);
  let outcome: FaultOutcome;
  let reports: LoadReport[] = [];
  try {
    outcome = await fault.run(rig, scale);
    // Recovered means: the agent ready again and every task of every app served.
    await rig.waitHealthy(scale === 'full' ? 180_000 : 60_000);
    const sentAfter = rig.sent();
    await waitFor('load after recovery', () => (rig.sent() > sentAfter + 50 ? true : undefined), 20_000);
  } finally {
    reports = await rig.stopLoad();
  }
  return {
    fault: fault.name,
    sent: reports.reduce((n, r) => n + r.sent, 0),
    failed: reports.reduce((n, r) => n + r.failed, 0),
    allowedFailures: outcome.allowedFailures,
    worstMs: Math.max(...reports.map((r) => r.worstMs)),
    staleRetries: reports.reduce((n, r) => n + r.staleRetries, 0),
    failures: reports.flatMap((r) => r.failures).slice(0, 10),
    workerDeaths: rig.workerDeaths().slice(deathsBefore),
    note: outcome.note,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

export function formatResults(results: readonly FaultResult[]): string {
  const rows = [['fault', 'sent', 'failed', 'allowed', 'worst ms', 'resent', 'note']];
  for (const r of results) rows.push([r.fault, String(r.sent), String(r.failed), String(r.allowedFailures), String(r.worstMs), String(r.staleRetries), r.note]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
