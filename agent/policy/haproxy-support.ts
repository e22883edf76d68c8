/**
 * What an HAProxy routing node cannot honour in a split policy. Its Lua
 * action (lua/edgeroute/haproxy/policy.lua) evaluates cookie, header, arg,
 * device, ip and percentage rules exactly as the nginx plugin does; it has
 * no region source (nginx-conf's --region-var, the Redis CIDR→region table),
 * so a region rule would never match there. `policy validate` and `policy
 * set` refuse such a policy while HAProxy nodes are in the fleet, and an
 * HAProxy agent warns about one written by hand.
 */
import type { Policy } from './policy-check.js';

/** Problems with the JSON pointer of each field, as policy-check.ts words them. */
export function haproxyPolicyProblems(policy: Policy): string[] {
  const problems: string[] = [];
  policy.rules?.forEach((rule, i) => {
    if (rule.match.region !== undefined) {
      problems.push(`/rules/${i}/match/region: HAProxy routing nodes cannot match a region (they have no --region-var or CIDR→region table); this rule would never match there`);
    }
  });
  return problems;
}
