/** `edgeroute demo`: a local sandbox to try edgeroute in one command. */
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisPolicies } from '../fleet/redis-policies.js';
import { httpGet } from '../sandbox/http-get.js';
import { startSandbox } from '../sandbox/sandbox.js';
import { waitFor } from '../sandbox/wait.js';
import { freePort, isPortFree } from '../sandbox/free-port.js';
import { createLogger } from './logger.js';
import { helpText, readOptions, stringOption, type OptionSpec } from './options.js';

const DEMO_OPTIONS: readonly OptionSpec[] = [
  { name: 'port', kind: 'string', help: 'public port of the demo nginx (default: 8080 if free, else any free port)' },
];

const DEMO_APPS = [
  { id: '/demo/web', instances: 3, labels: { 'edgeroute.vhosts': 'web.demo.local,*.web.demo.local' } },
  { id: '/demo/api', instances: 2, labels: { 'edgeroute.vhosts': 'api.demo.local', 'edgeroute.weight': '50' } },
  // Shares web.demo.local: /auth/... goes to it, with the prefix stripped.
  { id: '/demo/auth', instances: 1, labels: { 'edgeroute.vhosts': 'web.demo.local', 'edgeroute.path': '/auth', 'edgeroute.stripPath': 'true' } },
  { id: '/demo/shop-stable', instances: 2, labels: { 'edgeroute.vhosts': 'shop.demo.local', 'edgeroute.app': 'shop' } },
  { id: '/demo/shop-grey', instances: 1, labels: { 'edgeroute.vhosts': 'shop.demo.local', 'edgeroute.app': 'shop', 'edgeroute.version': 'grey' } },
];

const DEMO_POLICY = {
  default: 'stable',
  seed: 'demo',
  rules: [
    { name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' },
    { name: '20pct', match: { percentage: { value: 20, by: 'cookie:uid' } }, version: 'grey' },
  ],
};

export async function demoCommand(argv: readonly string[]): Promise<number> {
  const values = readOptions(DEMO_OPTIONS, argv, process.env, false, 'demo');
  if (values.help) {
    console.log(helpText('demo', 'Starts Redis, nginx with the plugin, a Marathon simulator with two apps, and the agent, on loopback. Ctrl-C stops them all.', DEMO_OPTIONS));
    return 0;
  }
  const logDir = mkdtempSync(join(tmpdir(), 'edgeroute-demo-'));
  const logFile = join(logDir, 'agent.log');
  const log = createLogger('info', createWriteStream(logFile));
  const port = Number(stringOption(values, 'port') ?? ((await isPortFree(8080)) ? 8080 : await freePort()));

  console.log('starting redis, nginx, the Marathon simulator and the agent ...');
  const sandbox = await startSandbox(log, { publicPort: port });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping every process the demo started ...`);
    await sandbox.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  for (const app of DEMO_APPS) await sandbox.marathon.deploy(app);
  const redis = new Redis(sandbox.redis.url);
  await new RedisPolicies(redis, 'edgeroute:').set('shop', JSON.stringify(DEMO_POLICY));
  redis.disconnect();
  const url = sandbox.nginx.publicUrl;
  await waitFor('the demo apps to be routed', async () => ((await httpGet(`${url}/`, { host: 'web.demo.local' })).status === 200 ? true : undefined), 15_000);

  console.log(`
edgeroute demo is running (nginx master pid ${sandbox.nginx.process.masterPid}).

  Marathon simulator  ${sandbox.marathon.url}   (try ${sandbox.marathon.url}/v2/apps?embed=apps.tasks)
  nginx, public       ${url}
  nginx, admin        ${sandbox.nginx.adminUrl}   (token in ${sandbox.nginx.prefix}/admin-token)
  agent dashboard     ${sandbox.agent.apiUrl}/    (state: ${sandbox.agent.apiUrl}/v1/state, metrics: ${sandbox.agent.apiUrl}/metrics)
  redis               ${sandbox.redis.url}
  agent log           ${logFile}

Try:
  curl -H 'Host: web.demo.local' ${url}/        # one of 3 web tasks answers with its task id
  curl -H 'Host: x.web.demo.local' ${url}/      # wildcard vhost
  curl -H 'Host: api.demo.local' ${url}/
  curl -H 'Host: web.demo.local' ${url}/auth/login    # the auth app, by path (it sees /login)
  curl -H 'Host: nobody.local' ${url}/          # 404: no app serves this host
  curl ${sandbox.marathon.url}/v2/tasks
  npx edgeroute watch --agent ${sandbox.agent.apiUrl}     # the live feed

Grey release: app "shop" has versions stable and grey, split by the policy at
edgeroute:policy:shop (testers by cookie, and 20% of users by cookie uid):
  curl -i -H 'Host: shop.demo.local' -H 'Cookie: grey=1' ${url}/     # X-Edgeroute-Version: grey
  curl -i -H 'Host: shop.demo.local' -H 'Cookie: uid=alice' ${url}/  # the same answer every time
  EDGEROUTE_REDIS=${sandbox.redis.url} npx edgeroute policy get shop
  redis-cli -p ${sandbox.redis.port} SET edgeroute:policy:shop '{"default":"grey"}'

Every 20 s the demo scales /demo/web between 3 and 5 tasks, and nginx follows
without a reload. Ctrl-C stops everything.`);

  let scaledUp = false;
  const timer = setInterval(() => {
    scaledUp = !scaledUp;
    const instances = scaledUp ? 5 : 3;
    sandbox.marathon
      .scale('/demo/web', instances)
      .then(() => console.log(`scaled /demo/web to ${instances} tasks`))
      .catch((err: Error) => console.error(`scale failed: ${err.message}`));
  }, 20_000);
  timer.unref();
  await new Promise(() => undefined);
  return 0;
}
