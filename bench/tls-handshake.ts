/**
 * TLS handshakes/s with certificates served by the plugin (pushed through
 * /edgeroute/certs, picked by SNI in ssl_certificate_by_lua) against a static
 * ssl_certificate, side by side, alternated round by round:
 *
 * - plain:    nginx with a static ssl_certificate and no Lua (bench/templates/tls-static.conf.hbs);
 * - fallback: edgeroute's TLS listener, SNI of a name no pushed certificate
 *             covers: the Lua phase runs, finds none, the static certificate serves;
 * - pushed:   edgeroute's TLS listener, SNI of a pushed certificate (one of a set of 100).
 *
 * Every handshake is a full one: the clients (two Node processes,
 * bench/lib/tls-client.ts) never offer a session, and a resumed handshake
 * fails the run. Each connection closes once the handshake completes; no
 * request is sent. All certificates are ECDSA P-256, TLS 1.3. The clients
 * share the 2 cores with nginx's one worker, so requests/s dilutes nginx's
 * share; the worker's CPU time per handshake (from /proc) is the undiluted
 * figure.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { childScript } from './lib/child-script.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { makeTestCert } from '../test/helpers/test-certs.js';
import { atLeast, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticTls } from './lib/nginx-fixtures.js';


const STATIC_NAME = 'static.bench';
const PUSHED_NAME = 'pushed.bench';

interface ClientReport {
  handshakes: number;
  resumed: number;
  errors: number;
  lastError: string;
  seconds: number;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The CN of the certificate served for `servername`. */
function servedName(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('handshake timed out')));
  });
}

async function handshakeLoad(port: number, servername: string, seconds: number, processes: number, concurrency: number, workerPid: number) {
  const cpuBefore = cpuSeconds(workerPid);
  const reports = await Promise.all(
    Array.from({ length: processes }, async () => {
      const { stdout } = await execa(process.execPath, [childScript('tls-client'), String(port), servername, String(seconds), String(concurrency)], { timeout: (seconds + 30) * 1000 });
      return JSON.parse(stdout) as ClientReport;
    }),
  );
  const cpu = cpuSeconds(workerPid) - cpuBefore;
  const handshakes = reports.reduce((s, r) => s + r.handshakes, 0);
  const resumed = reports.reduce((s, r) => s + r.resumed, 0);
  const errors = reports.reduce((s, r) => s + r.errors, 0);
  const elapsed = Math.max(...reports.map((r) => r.seconds));
  if (errors > 0) throw new Error(`${servername}: ${errors} handshakes failed (${reports.map((r) => r.lastError).filter(Boolean)[0]}); the setup is broken`);
  if (resumed > 0) throw new Error(`${servername}: ${resumed} handshakes were resumed; every one must be full`);
  return { handshakesPerSecond: handshakes / elapsed, handshakes, workerCpuUsPerHandshake: (cpu * 1e6) / handshakes };
}

export const tlsHandshake: Benchmark = {
  name: 'tls-handshake',
  description: 'full TLS handshakes/s: certificate from the plugin by SNI vs static ssl_certificate, side by side',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const rounds = ctx.smoke ? 1 : 7;
    const seconds = ctx.smoke ? 1 : 4;
    const certCount = ctx.smoke ? 3 : 100;
    const processes = 2;
    const concurrency = ctx.smoke ? 2 : 8;
    const dir = mkdtempSync(join(tmpdir(), 'edgeroute-bench-certs-'));
    mkdirSync(join(dir, 'set'));
    const staticCert = await makeTestCert({ names: [STATIC_NAME], cert: join(dir, 'static.crt'), key: join(dir, 'static.key') });
    const names = [PUSHED_NAME, ...Array.from({ length: certCount - 1 }, (_, i) => `site-${i}.bench`)];
    const set: Array<{ id: string; names: string[]; cert_pem: string; key_pem: string }> = [];
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(
        names.slice(i, i + 10).map(async (name, j) => {
          const made = await makeTestCert({ names: [name, `www.${name}`], cert: join(dir, 'set', `${name}.crt`), key: join(dir, 'set', `${name}.key`) });
          set[i + j] = { id: name, names: [name, `www.${name}`], cert_pem: readFileSync(made.cert, 'utf8'), key_pem: readFileSync(made.key, 'utf8') };
        }),
      );
    }
    const edge = await startNginxNode({ workerProcesses: 1, tls: staticCert, errorLogLevel: 'warn' });
    const plain = await startStaticTls(staticCert.cert, staticCert.key);
    try {
      const res = await fetch(`${edge.adminUrl}/edgeroute/certs`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${edge.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ version: 'bench-1', certs: set }),
      });
      if (res.status !== 200) throw new Error(`certificate push refused: HTTP ${res.status} ${await res.text()}`);
      const edgePort = edge.tlsPort as number;
      // What each variant really serves.
      const served = {
        plain: await servedName(plain.tlsPort, STATIC_NAME),
        fallback: await servedName(edgePort, STATIC_NAME),
        pushed: await servedName(edgePort, PUSHED_NAME),
      };
      if (served.plain !== STATIC_NAME || served.fallback !== STATIC_NAME || served.pushed !== PUSHED_NAME) throw new Error(`served certificates ${JSON.stringify(served)}: the setup is broken`);
      const [edgeWorker] = edge.process.workerPids();
      const [plainWorker] = plain.process.workerPids();
      if (edgeWorker === undefined || plainWorker === undefined) throw new Error('no nginx worker');
      const variants = {
        plain: { port: plain.tlsPort, servername: STATIC_NAME, worker: plainWorker },
        fallback: { port: edgePort, servername: STATIC_NAME, worker: edgeWorker },
        pushed: { port: edgePort, servername: PUSHED_NAME, worker: edgeWorker },
      } as const;
      const keys = ['plain', 'fallback', 'pushed'] as const;
      type Run = Awaited<ReturnType<typeof handshakeLoad>>;
      const runs: Record<(typeof keys)[number], Run[]> = { plain: [], fallback: [], pushed: [] };
      for (const key of keys) await handshakeLoad(variants[key].port, variants[key].servername, 1, processes, concurrency, variants[key].worker); // warm-up
      for (let r = 0; r < rounds; r++) {
        // Rotate the order, so no variant always follows the same one.
        const order = keys.map((_, i) => keys[(i + r) % keys.length] as (typeof keys)[number]);
        for (const key of order) {
          const v = variants[key];
          runs[key].push(await handshakeLoad(v.port, v.servername, seconds, processes, concurrency, v.worker));
        }
        ctx.progress(
          `round ${r + 1}/${rounds}: ${keys.map((k) => `${k} ${Math.round(runs[k][r]?.handshakesPerSecond ?? 0)}/s (${round(runs[k][r]?.workerCpuUsPerHandshake ?? 0, 0)} µs CPU)`).join(', ')}`,
        );
      }
      const ratio = (key: (typeof keys)[number], to: (typeof keys)[number]) => median(runs[key].map((x, i) => x.handshakesPerSecond / (runs[to][i]?.handshakesPerSecond ?? NaN)));
      const cpuRatio = (key: (typeof keys)[number], to: (typeof keys)[number]) => median(runs[key].map((x, i) => x.workerCpuUsPerHandshake / (runs[to][i]?.workerCpuUsPerHandshake ?? NaN)));
      const summaryOf = (key: (typeof keys)[number]) => ({
        handshakesPerSecond: round(median(runs[key].map((x) => x.handshakesPerSecond)), 0),
        workerCpuUsPerHandshake: round(median(runs[key].map((x) => x.workerCpuUsPerHandshake)), 1),
        rounds: runs[key].map((x) => ({ handshakesPerSecond: round(x.handshakesPerSecond, 0), handshakes: x.handshakes, workerCpuUsPerHandshake: round(x.workerCpuUsPerHandshake, 1) })),
      });
      const results = {
        setup: {
          rounds,
          secondsPerRun: seconds,
          clientProcesses: processes,
          connectionsPerProcess: concurrency,
          nginxWorkers: 1,
          certificates: 'ECDSA P-256, self-signed, TLS 1.3 (Node client defaults)',
          pushedCertificates: certCount,
          handshake: 'full (no session offered, none resumed), closed at once, no request',
          served,
        },
        plain: summaryOf('plain'),
        fallback: summaryOf('fallback'),
        pushed: summaryOf('pushed'),
        ratio_pushed_plain: round(ratio('pushed', 'plain')),
        ratio_fallback_plain: round(ratio('fallback', 'plain')),
        ratio_pushed_fallback: round(ratio('pushed', 'fallback')),
        workerCpuRatio_pushed_plain: round(cpuRatio('pushed', 'plain')),
        workerCpuRatio_fallback_plain: round(cpuRatio('fallback', 'plain')),
      };
      return {
        summary: `handshakes/s pushed/plain ${results.ratio_pushed_plain}, fallback/plain ${results.ratio_fallback_plain} (median of ${rounds} rounds); ${results.pushed.handshakesPerSecond} vs ${results.plain.handshakesPerSecond}/s; nginx CPU per handshake ${results.pushed.workerCpuUsPerHandshake} vs ${results.plain.workerCpuUsPerHandshake} µs (${results.workerCpuRatio_pushed_plain}x)`,
        targets: [atLeast('handshakes/s, certificate from the plugin / static certificate', results.ratio_pushed_plain, 0.9)],
        results,
      };
    } finally {
      await plain.stop();
      await edge.process.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
