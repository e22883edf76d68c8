/** `edgeroute_certificate_expiry_seconds{name}` on the agent's registry, computed at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import type { CertificateView } from './cert-watcher.js';

export function registerCertificateExpiry(registry: Registry, certificates: () => readonly CertificateView[], now: () => number = Date.now): Gauge<'name'> {
  return new Gauge({
    name: 'edgeroute_certificate_expiry_seconds',
    help: 'Seconds until the notAfter of the certificate served for each SNI name (negative: expired, and refused)',
    labelNames: ['name'],
    registers: [registry],
    collect() {
      this.reset();
      const all = certificates();
      const served = new Set<string>();
      for (const cert of all) {
        if (cert.status !== 'served' || cert.notAfter === null) continue;
        for (const name of cert.servedNames) {
          served.add(name);
          this.set({ name }, secondsUntil(cert.notAfter, now()));
        }
      }
      // A name that only a refused certificate has (an expired renewal not yet
      // replaced) still shows, so that an alert on it fires.
      for (const cert of all) {
        if (cert.status === 'served' || cert.notAfter === null) continue;
        for (const name of cert.names) if (!served.has(name)) this.set({ name }, secondsUntil(cert.notAfter, now()));
      }
    },
  });
}

function secondsUntil(iso: string, now: number): number {
  return Math.round((Date.parse(iso) - now) / 1000);
}
