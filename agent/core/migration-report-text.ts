/** The migration report as text: a block per app, then the summary line. */
import type { LabelFate } from './marathon-lb-labels.js';
import type { AppReport, MigrationReport } from './migration-report.js';

const FATE: Record<LabelFate, string> = {
  mapped: 'ok',
  same: 'same',
  differs: 'differs',
  unsupported: 'NOT HONOURED',
  bad: 'BAD VALUE',
};
const FATE_WIDTH = Math.max(...Object.values(FATE).map((f) => f.length));
const MAX_VALUE = 48;

export function formatMigrationReport(report: MigrationReport): string {
  const lines: string[] = [];
  for (const app of report.apps) lines.push(...appLines(app), '');
  const { apps, unchanged, attention } = report.summary;
  lines.push(`${apps} app${apps === 1 ? '' : 's'}: ${unchanged} routed unchanged, ${attention} need${attention === 1 ? 's' : ''} attention`);
  return `${lines.join('\n')}\n`;
}

function appLines(app: AppReport): string[] {
  const by = app.readBy === 'edgeroute' ? 'edgeroute labels' : app.readBy === 'marathon-lb' ? 'marathon-lb labels' : 'marathon-lb labels, not read';
  const status = app.status === 'attention' ? 'NEEDS ATTENTION' : app.readBy === 'edgeroute' ? 'routes by its edgeroute labels' : 'routes as marathon-lb would';
  const lines = [`${app.id}  (${by}): ${status}`, `  nginx nodes:   ${app.nginx}`, `  HAProxy nodes: ${app.haproxy}`];
  for (const label of app.labels) {
    const value = label.value === '' ? '' : `=${shown(label.value)}`;
    lines.push(`  ${FATE[label.fate].padEnd(FATE_WIDTH)}  ${label.label}${value}: ${label.note}`);
  }
  for (const problem of app.problems) lines.push(`  ${'PROBLEM'.padEnd(FATE_WIDTH)}  ${problem}`);
  return lines;
}

/** A label value on one line: quoted when it has spaces or line breaks, cut when long. */
function shown(value: string): string {
  const cut = value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}...` : value;
  return /[\s"]/.test(cut) ? JSON.stringify(cut) : cut;
}
