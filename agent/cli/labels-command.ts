/**
 * `edgeroute labels`: the migration report. For each app an agent with these
 * options would route: how it routes on nginx and HAProxy nodes, what each
 * marathon-lb label became, what needs attention. Exit 0 when every app
 * routes as marathon-lb would, 6 otherwise.
 */
import { groupSelectorProblem } from '../core/groups.js';
import { migrationReport } from '../core/migration-report.js';
import { formatMigrationReport } from '../core/migration-report-text.js';
import { MarathonClient, parseMarathonUrls } from '../source/marathon/marathon-client.js';
import { helpText, readOptions, stringOption, UsageError, type OptionSpec } from './options.js';

/** Exit code when an app does not route as marathon-lb would. */
export const EXIT_ATTENTION = 6;

const LABELS_OPTIONS: readonly OptionSpec[] = [
  { name: 'marathon', kind: 'string', required: true, help: 'Marathon URL(s), comma-separated; http://user:pass@host for basic auth' },
  { name: 'marathon-ca', kind: 'string', help: "PEM file of the CA of Marathon's HTTPS certificate" },
  { name: 'marathon-lb-labels', kind: 'boolean', help: "report as an agent with --marathon-lb-labels: apps without edgeroute.* labels read by their marathon-lb labels" },
  { name: 'group', kind: 'string', help: "as an agent with this --group (a comma list, or '*' for every app)" },
  { name: 'json', kind: 'boolean', help: 'print the report as JSON' },
];

export async function labelsCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(LABELS_OPTIONS, argv, process.env, false, 'labels');
  if (values.help) {
    console.log(
      helpText(
        'labels',
        `Reports how each app routes on nginx and HAProxy nodes, what each marathon-lb label became and what needs attention. Exit 0 when every app routes as marathon-lb would, ${EXIT_ATTENTION} otherwise.`,
        LABELS_OPTIONS,
      ),
    );
    return 0;
  }
  const group = stringOption(values, 'group');
  const badGroup = group === null ? null : groupSelectorProblem(group);
  if (badGroup !== null) throw new UsageError(`--group ${badGroup}`);
  const marathon = new MarathonClient(parseMarathonUrls(stringOption(values, 'marathon') ?? ''), { caFile: stringOption(values, 'marathon-ca') });
  const { snapshot } = await marathon.fetchApps();
  const report = migrationReport(snapshot, { group, marathonLbLabels: values['marathon-lb-labels'] === true });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatMigrationReport(report));
  return report.summary.attention === 0 ? 0 : EXIT_ATTENTION;
}
