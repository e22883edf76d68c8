/**
 * Logs each input problem once, when it appears, and once more when it goes
 * away, instead of on every sync.
 */
import type { Logger } from 'pino';
import type { InputProblem } from '../core/marathon-types.js';

export class ProblemReporter {
  private active = new Map<string, InputProblem>();

  constructor(private readonly log: Logger) {}

  report(problems: readonly InputProblem[]): void {
    const next = new Map<string, InputProblem>();
    for (const problem of problems) next.set(`${problem.appId ?? ''}\u0000${problem.message}`, problem);
    for (const [key, problem] of next) {
      if (!this.active.has(key)) this.log.warn({ app: problem.appId, problem: problem.message }, 'marathon app not routed as labelled');
    }
    for (const [key, problem] of this.active) {
      if (!next.has(key)) this.log.info({ app: problem.appId, problem: problem.message }, 'marathon app problem resolved');
    }
    this.active = next;
  }

  current(): InputProblem[] {
    return [...this.active.values()];
  }
}
