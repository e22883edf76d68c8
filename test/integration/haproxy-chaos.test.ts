// The chaos suite for HAProxy routing nodes: under continuous keep-alive HTTP
// load and a load of short TCP connections, the agent is killed -9, the
// runtime socket disappears, HAProxy reloads seamlessly and HAProxy restarts.
// Nothing is lost except, on a hard restart, the connections HAProxy cuts or
// refuses while no process listens; never a wrong answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyChaosRig } from '../chaos/haproxy-rig.js';
import { formatHaproxyResults, HAPROXY_FAULTS, runHaproxyFault, type HaproxyFaultResult } from '../chaos/haproxy-faults.js';

let rig: HaproxyChaosRig;
const results: HaproxyFaultResult[] = [];

beforeAll(async () => {
  rig = await HaproxyChaosRig.start();
}, 120_000);

afterAll(async () => {
  if (results.length > 0) console.log(`\n${formatHaproxyResults(results)}`);
  await rig?.stop();
});

describe('chaos on an HAProxy routing node', () => {
  for (const fault of HAPROXY_FAULTS) {
    it(`${fault.name}: ${fault.what}`, async () => {
      const result = await runHaproxyFault(rig, fault);
      results.push(result);
      expect(result.sent).toBeGreaterThan(100);
      expect(result.tcpSent).toBeGreaterThan(50);
      expect(result.failed, result.failures.join('\n')).toBeLessThanOrEqual(result.allowed);
      // Never a wrong answer: a status other than 200 is a failure no fault may cause.
      expect(result.failures.filter((f) => /^\d{3}:/.test(f))).toEqual([]);
    }, 180_000);
  }
});
