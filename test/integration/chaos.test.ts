// The chaos suite at short durations (`npm run chaos` holds each fault as
// long as the issue asks): under continuous load through nginx, each fault
// loses no request, except requests cut off on a crashed backend that nginx
// must not retry (POSTs); no nginx worker dies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULTS } from '../chaos/faults.js';
import { ChaosRig } from '../chaos/rig.js';
import { formatResults, runFault, type FaultResult } from '../chaos/run-fault.js';

let rig: ChaosRig;
const results: FaultResult[] = [];

beforeAll(async () => {
  rig = await ChaosRig.start({ stallTimeoutSeconds: 2 });
}, 120_000);

afterAll(async () => {
  if (results.length > 0) console.log(`\n${formatResults(results)}`);
  await rig?.stop();
});

describe('chaos (short)', () => {
  for (const fault of FAULTS) {
    it(`${fault.name}: ${fault.what}`, async () => {
      const result = await runFault(rig, fault, 'short');
      results.push(result);
      expect(result.sent).toBeGreaterThan(100);
      expect(result.workerDeaths).toEqual([]);
      expect(result.failed, result.failures.join('\n')).toBeLessThanOrEqual(result.allowedFailures);
    }, 180_000);
  }
});
