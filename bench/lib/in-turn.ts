/** Requests one after another on one kept-alive connection: what a per-request count (heap, instructions) needs. */
import http from 'node:http';

/** Sends `count` GETs of `path` to `url`, to `hosts` in turn; each must answer 200. */
export async function sendInTurn(url: string, count: number, hosts: readonly string[], path: string, headers: Record<string, string> = {}): Promise<void> {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < count; i++) {
      const host = hosts[i % hosts.length] as string;
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: target.hostname, port: target.port, path, agent, headers: { ...headers, host } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
      if (status !== 200) throw new Error(`${host}${path}: ${status}`);
    }
  } finally {
    agent.destroy();
  }
}
