// The dashboard in a real browser (Debian's Chromium, driven by playwright-core)
// against a real agent, nginx and the Marathon simulator: it shows what the
// agent routes, follows the live feed without a reload, and never renders
// label text as HTML.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const WAIT_MS = 15_000;

let marathon: MarathonSim;
let node: RoutingNode;
let browser: TestBrowser;
let page: Page;
const pageErrors: string[] = [];

const row = (taskId: string) => page.locator(`tr[data-task-id="${taskId}"]`);

beforeAll(async () => {
  [marathon, browser] = await Promise.all([
    MarathonSim.start(),
    launchBrowser(),
  ]);
  node = await startRoutingNode(marathon.url, { listen: '127.0.0.1:0' });
  await node.agent.ready;
  page = await browser.browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
  page.on('dialog', (dialog) => {
    pageErrors.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
});

afterAll(async () => {
  await browser?.close();
  await node?.stop();
  await marathon?.stop();
});

describe('dashboard', () => {
  it('serves the page and its assets from the agent', async () => {
    const base = node.agent.apiUrl as string;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const [path, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css']] as const) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toContain(type);
    }
  });

  it('shows the apps and follows the live feed without reloading', async () => {
    const [first] = await marathon.deploy({ id: '/dash', instances: 1, labels: { 'edgeroute.vhosts': 'dash.test' } });
    await page.goto(node.agent.apiUrl as string);

    await expect.poll(() => page.getAttribute('#live', 'data-live'), { timeout: WAIT_MS }).toBe('open');
    await row(first!.id).waitFor({ timeout: WAIT_MS });
    const app = page.locator('section.app', { has: row(first!.id) });
    expect(await app.locator('.app-id').textContent()).toContain('dash');
    expect(await app.locator('.vhost').allTextContents()).toEqual(['dash.test']);
    expect(await page.locator('#st-marathon').textContent()).toBe('connected');
    expect(await page.locator('#st-dataplane').textContent()).toBe('nginx holds');

    // A reload would lose this mark.
    await page.evaluate(() => { (globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true; });
    await marathon.scale('/dash', 2);
    const second = marathon.tasks('/dash').map((t) => t.id).find((id) => id !== first!.id);
    expect(second).toBeDefined();
    await page.locator(`tr[data-task-id="${second}"][data-state="published"]`).waitFor({ timeout: WAIT_MS });

    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(await row(second!).locator('.badge.state').textContent()).toBe('published');
    expect(await row(second!).locator('.weight-num').textContent()).toBe('100 / 100');
    expect(await row(first!.id).getAttribute('data-state')).toBe('published');
    expect(await page.locator('#events .event-published').count()).toBeGreaterThan(0);
    expect(await page.locator('#events .event-text').allTextContents()).toContainEqual(expect.stringContaining(second!));
  });

  it('shows each route\'s paths and settings', async () => {
    const [task] = await marathon.deploy({
      id: '/routed',
      instances: 1,
      labels: { 'edgeroute.vhosts': 'r.test', 'edgeroute.path': '/api,/v2', 'edgeroute.readTimeout': '90', 'edgeroute.sticky': 'true', 'edgeroute.maxBodySize': '10m' },
    });
    const app = page.locator('section.app', { has: row(task!.id) });
    await app.waitFor({ timeout: WAIT_MS });
    expect(await app.locator('.vhost').allTextContents()).toEqual(['r.test/api', 'r.test/v2']);
    expect(await app.locator('.setting').allTextContents()).toEqual(['sticky (cookie edgeroute_sticky)', 'read 90 s', 'body ≤ 10 MiB']);
  });

  // A skipped app changes no route, so no feed event: this also covers the page's slow poll.
  it('shows label text as text, never as HTML', async () => {
    const payload = '<img src=x id=injected onerror=window.__xss=1>';
    await marathon.deploy({ id: '/bad-weight', instances: 1, labels: { 'edgeroute.vhosts': 'bad.test', 'edgeroute.weight': payload } });
    const problem = page.locator('#problem-list li', { hasText: 'bad-weight' });
    await problem.waitFor({ timeout: WAIT_MS });
    expect(await problem.textContent()).toContain(payload);
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('never shows the reply to a search typed over, even when it arrives late', async () => {
    const ids = () => page.locator('section.app').evaluateAll((apps) => apps.map((a) => a.getAttribute('data-app-id')));
    await expect.poll(ids, { timeout: WAIT_MS }).toContain('/routed');
    // Every list of apps the page shows, from here on.
    await page.evaluate(() => {
      const seen: string[] = [];
      (globalThis as unknown as { __shown: string[] }).__shown = seen;
      const list = () => [...document.querySelectorAll('section.app')].map((a) => a.getAttribute('data-app-id')).join(',');
      new MutationObserver(() => {
        const now = list();
        if (seen[seen.length - 1] !== now) seen.push(now);
      }).observe(document.body, { childList: true, subtree: true });
    });
    // The agent's answer to the search "dash" is held until the search reads "routed".
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    let heldOnce = false;
    await page.route(
      (url) => url.pathname.endsWith('/v1/state') && url.searchParams.get('q') === 'dash',
      async (route) => {
        if (!heldOnce) {
          heldOnce = true;
          held();
          await released;
        }
        await route.continue();
      },
    );
    try {
      await page.locator('#filter').fill('dash');
      await holding;
      await page.locator('#filter').fill('routed');
      // The page has asked for "routed" (it waits for the reply in flight): the late "dash" reply comes now.
      await page.waitForTimeout(400);
      release();
      await expect.poll(ids, { timeout: WAIT_MS }).toEqual(['/routed']);
      const shown = await page.evaluate(() => (globalThis as unknown as { __shown: string[] }).__shown);
      expect(shown).not.toContain('/dash');
      expect(shown[shown.length - 1]).toBe('/routed');
    } finally {
      release();
      await page.unrouteAll();
      await page.locator('#filter').fill('');
    }
    expect(pageErrors).toEqual([]);
  });

  // Text typed into the box is the search only once typing pauses. A refresh
  // in between (here, a deploy's feed event) must ask for the search shown,
  // or the pause would later reset a page the user turned after that refresh.
  it('sends a search only once typing pauses, even when the feed refreshes the page meanwhile', async () => {
    const ids = () => page.locator('section.app').evaluateAll((apps) => apps.map((a) => a.getAttribute('data-app-id')));
    // From the whole list, so the filtered one shows that this pause has fired.
    await expect.poll(ids, { timeout: WAIT_MS }).toContain('/dash');
    await page.locator('#filter').fill('routed');
    await expect.poll(ids, { timeout: WAIT_MS }).toEqual(['/routed']);
    // Typing that has not paused yet: the text changes, the pause has not fired.
    await page.locator('#filter').evaluate((input: HTMLInputElement) => { input.value = ''; });
    const refreshed = page.waitForRequest((req) => new URL(req.url()).pathname.endsWith('/v1/state'), { timeout: WAIT_MS });
    await marathon.deploy({ id: '/typed-meanwhile', instances: 1, labels: { 'edgeroute.vhosts': 'typed.test' } });
    expect(new URL((await refreshed).url()).searchParams.get('q')).toBe('routed');
    await page.waitForTimeout(300); // the reply, had it been the unfiltered list
    expect(await ids()).toEqual(['/routed']);
    // The pause comes: the whole list.
    await page.locator('#filter').dispatchEvent('input');
    await expect.poll(ids, { timeout: WAIT_MS }).toContain('/typed-meanwhile');
    expect(await ids()).toContain('/routed');
    expect(pageErrors).toEqual([]);
  });
});
