// The dashboard's traffic, fleet and rollout views in a real browser (Debian's
// Chromium, driven by playwright-core): two nginx routing nodes on one Redis,
// an app whose requests a policy splits 80/20 between a stable and a grey
// version, under load. The plots appear and move, the measured shares are
// those of the split, a grey version answering 5xx is flagged, and the fleet
// view flags the node whose agent stopped. Screenshots go to test/artifacts/.
import { Agent } from 'node:http';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { startStatusBackend, type StatusBackend } from '../helpers/status-backend.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const WAIT_MS = 20_000;
// Read every 400 ms into 2 s slots: the live window (this slot and the one before) is 2-4 s of requests.
const TRAFFIC = { trafficIntervalMs: 400, trafficSlotMs: 2_000 };
const GREY_PERCENT = 20;

let redisServer: RedisServer;
let redis: Redis;
let marathon: MarathonSim;
let a: RoutingNode;
let b: RoutingNode;
let bAgentStopped = false;
let stable: StatusBackend;
let grey: StatusBackend;
let browser: TestBrowser;
let page: Page;
const pageErrors: string[] = [];
let load: { stop(): Promise<number> } | null = null;

const shop = (version: string, port: number) => ({
  id: `/shop-${version}`,
  instances: 1,
  backendPorts: [port],
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
});

/** Requests through `url`, each from another user (X-User), until stopped; resolves with how many were sent. */
function startLoad(url: string, concurrency = 4): { stop(): Promise<number> } {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let sent = 0;
  const worker = async () => {
    while (running && sent < 500_000) {
      sent++;
      await httpRequest(`${url}/`, { host: 'shop.test', agent, headers: { 'x-user': `u${Math.random().toString(36).slice(2)}` }, timeoutMs: 5_000 }).catch(() => undefined);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return sent;
    },
  };
}

const row = (version: string) => page.locator(`section.app[data-app-id="shop"] .traffic-row[data-version="${version}"]`);
const shareOf = async (version: string) => Number(await row(version).getAttribute('data-share'));
const trafficUpdates = async () => Number(await page.locator('section.app[data-app-id="shop"] .traffic').getAttribute('data-updates'));

beforeAll(async () => {
  [redisServer, marathon, stable, grey, browser] = await Promise.all([
    startRedis(),
    MarathonSim.start(),
    startStatusBackend('stable'),
    startStatusBackend('grey'),
    launchBrowser(),
  ]);
  redis = new Redis(redisServer.url);
  [a, b] = await Promise.all([
    startRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-a', listen: '127.0.0.1:0', ...TRAFFIC }, { redis: redisServer.url }),
    startRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-b', listen: null, ...TRAFFIC }, { redis: redisServer.url }),
  ]);
  await a.agent.ready;
  await marathon.deploy(shop('stable', stable.port));
  await marathon.deploy(shop('grey', grey.port));
  await redis.set('edgeroute:policy:shop', JSON.stringify({ default: 'stable', seed: 'dash', rules: [{ name: 'grey', match: { percentage: { value: GREY_PERCENT, by: 'header:x-user' } }, version: 'grey' }] }));
  await redis.publish('edgeroute:policy-changed', 'shop');
  // Both versions answer on node A, through the policy, on every worker.
  await waitFor('both versions to answer shop.test', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) seen.add((await httpRequest(`${a.nginx.publicUrl}/`, { host: 'shop.test', headers: { 'x-user': `p${i}` } })).body);
    return seen.has('stable') && seen.has('grey') ? true : undefined;
  }, WAIT_MS);
  page = await browser.browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await load?.stop();
  await browser?.close();
  redis?.disconnect();
  await a?.stop();
  if (bAgentStopped) await b?.nginx.process.stop();
  else await b?.stop();
  await Promise.all([marathon?.stop(), redisServer?.stop(), stable?.close(), grey?.close()]);
});

describe('traffic, fleet and rollouts on the dashboard', () => {
  it('plots each version under a live 80/20 split, and the measured shares are those of the split', async () => {
    load = startLoad(a.nginx.publicUrl);
    await page.goto(a.agent.apiUrl as string);
    // Four plots (requests/s, share, 5xx, latency), drawn by uPlot.
    await page.locator('section.app[data-app-id="shop"] .traffic .plot .uplot').nth(3).waitFor({ timeout: WAIT_MS });
    expect(await page.locator('section.app[data-app-id="shop"] .traffic .plot').evaluateAll((figures) => figures.map((f) => f.getAttribute('data-metric')))).toEqual(['rps', 'share', 'errors', 'latency']);

    // The shares measured over the live window are the policy's, within 5 points.
    await expect
      .poll(async () => [Math.abs((await shareOf('stable')) - (100 - GREY_PERCENT) / 100) <= 0.05, Math.abs((await shareOf('grey')) - GREY_PERCENT / 100) <= 0.05], { timeout: WAIT_MS, interval: 250 })
      .toEqual([true, true]);
    expect(await row('stable').locator('.t-share').textContent()).toMatch(/^\d+\.\d %$/);
    // The same task server answers both versions: no 5xx flag. Not "no flag": on a loaded machine one
    // version's tail can be slower by chance, and a latency flag over 500 requests or more says so.
    expect(await row('grey').getAttribute('data-flagged')).toMatch(/^(true|false)$/);
    expect(await row('grey').locator('.t-flags').textContent()).not.toContain('5xx');
    expect(await row('stable').locator('.tag').textContent()).toBe('default');

    // The plots move: new data every reading, more points as slots fill.
    const updates = await trafficUpdates();
    const points = Number(await page.locator('section.app[data-app-id="shop"] .traffic').getAttribute('data-points'));
    await expect.poll(trafficUpdates, { timeout: WAIT_MS }).toBeGreaterThan(updates + 1);
    await expect.poll(async () => Number(await page.locator('section.app[data-app-id="shop"] .traffic').getAttribute('data-points')), { timeout: WAIT_MS }).toBeGreaterThan(points);
    await page.screenshot({ path: `${ARTIFACTS}traffic-split.png`, fullPage: true });
  }, 60_000);

  it('flags the grey version when it answers 5xx', async () => {
    grey.setStatus(500);
    await row('grey').and(page.locator('[data-flagged="true"]')).waitFor({ timeout: WAIT_MS });
    await expect
      .poll(() => row('grey').locator('.t-flags .badge').allTextContents(), { timeout: WAIT_MS })
      .toContainEqual(expect.stringMatching(/^worse: 5xx \d+\.\d % \(stable 0\.0 %\)$/));
    expect(await row('stable').getAttribute('data-flagged')).toBe('false');
    expect(await page.locator('section.app[data-app-id="shop"]').getAttribute('data-flagged')).toBe('true');
    await page.screenshot({ path: `${ARTIFACTS}traffic-flagged.png`, fullPage: true });
    grey.setStatus(200);
  }, 60_000);

  it('shows a rollout: its steps, the share it set and the share measured', async () => {
    const now = Date.now();
    await redis.set(
      'edgeroute:rollout:shop',
      JSON.stringify({ app: 'shop', from: { appId: '/shop-stable', version: 'stable', instances: 1 }, to: { appId: '/shop-grey', version: 'grey', instances: 1 }, previousPolicy: null, splitBy: 'header:x-user', by: 'ops@test', startedAt: now, phase: 'shifting', percent: GREY_PERCENT, steps: [GREY_PERCENT, 50], shares: [{ percent: 0, at: now }, { percent: GREY_PERCENT, at: now }], updatedAt: now }),
    );
    const card = page.locator('#rollouts .rollout[data-app="shop"]');
    await card.waitFor({ timeout: WAIT_MS });
    expect(await card.locator('.step').allTextContents()).toEqual(['20 %', '50 %', '100 %']);
    expect(await card.locator('.step-current').textContent()).toBe('20 %');
    expect(await card.locator('.r-set').textContent()).toBe('20 %');
    await expect.poll(async () => Math.abs(Number.parseFloat((await card.locator('.r-measured').textContent()) ?? '') - GREY_PERCENT), { timeout: WAIT_MS }).toBeLessThanOrEqual(5);
  }, 60_000);

  it('lists both routing nodes and flags the one whose agent stopped', async () => {
    const nodeRow = (id: string) => page.locator(`#fleet tr[data-node-id="${id}"]`);
    await expect.poll(() => page.locator('#fleet tr[data-node-id]').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-node-id')}:${r.getAttribute('data-out-of-step')}`)), { timeout: WAIT_MS }).toEqual(['edge-a:false', 'edge-b:false']);
    expect(await nodeRow('edge-a').locator('.tag').textContent()).toBe('this node');

    bAgentStopped = true;
    await b.agent.stop();
    await page.locator('#fleet tr[data-node-id="edge-b"][data-out-of-step="true"]').waitFor({ timeout: WAIT_MS });
    expect(await nodeRow('edge-b').locator('.reason').textContent()).toMatch(/^agent stopped \d+ s ago; its data plane keeps the last table$/);
    expect(await nodeRow('edge-a').getAttribute('data-out-of-step')).toBe('false');
    expect(await page.locator('#fleet-count').textContent()).toBe('(2, 1 out of step)');
    await page.screenshot({ path: `${ARTIFACTS}fleet.png`, fullPage: true });
  }, 60_000);

  it('stays responsive with 10,000 apps (a page at a time, searched by the agent) and 50 nodes', async () => {
    marathon.loadBulk(Array.from({ length: 10_000 }, (_, i) => ({ id: `/bulk/app-${String(i).padStart(5, '0')}`, instances: 1, backendPorts: [stable.port], labels: { 'edgeroute.vhosts': `app-${i}.bulk.test` } })));
    // 48 more routing nodes' heartbeats, as their agents write them.
    const now = Date.now();
    const table = await a.agent.reconciler.pushedVersion;
    await redis.hset('edgeroute:nodes', ...Array.from({ length: 48 }, (_, i) => [`edge-x${String(i).padStart(2, '0')}`, JSON.stringify({ nodeId: `edge-x${i}`, heartbeatAt: now + 60_000, startedAt: now, tableVersion: table, apiUrl: null, dataPlane: 'nginx', heartbeatMs: 60_000 })]).flat());
    await expect.poll(() => page.locator('#app-count').textContent(), { timeout: 30_000 }).toBe('(10001)');
    expect(await page.locator('section.app').count()).toBe(50);
    expect(await page.locator('#page-text').textContent()).toBe('apps 1–50 of 10001');

    await page.locator('#filter').fill('app-01234');
    await expect.poll(() => page.locator('section.app').evaluateAll((apps) => apps.map((a) => a.getAttribute('data-app-id'))), { timeout: WAIT_MS }).toEqual(['/bulk/app-01234']);
    expect(await page.locator('#app-count').textContent()).toBe('(1 of 10001)');
    await page.locator('#filter').fill('');
    // The unfiltered first page is back before the next one is asked for.
    await expect.poll(() => page.locator('section.app').first().getAttribute('data-app-id'), { timeout: WAIT_MS }).toBe('/bulk/app-00000');
    await page.locator('#page-next').click();
    await expect.poll(() => page.locator('#page-text').textContent(), { timeout: WAIT_MS }).toBe('apps 51–100 of 10001');
    await expect.poll(() => page.locator('section.app').first().getAttribute('data-app-id'), { timeout: WAIT_MS }).toBe('/bulk/app-00050'); // '/bulk/...' sorts before 'shop'

    await expect.poll(() => page.locator('#fleet tr[data-node-id]').count(), { timeout: WAIT_MS }).toBe(50);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-10000-apps.png` });
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
