import { isIPv4, isIPv6 } from 'node:net';

/** Whether `text` is an IPv4 or IPv6 CIDR (a bare address counts as /32 or /128). */
export function isCidr(text: string): boolean {
  const [address, prefix, extra] = text.split('/');
  // node:net takes a zone ("fe80::1%eth0"), which a CIDR cannot have and the plugin refuses.
  if (address === undefined || extra !== undefined || address.includes('%')) return false;
  const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  if (max === 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= max;
}
