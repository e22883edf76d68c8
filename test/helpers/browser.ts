/**
 * Debian's Chromium for the dashboard tests, with a close that cannot hold up
 * an afterAll: on a loaded CI machine a browser once took longer than the
 * hook's 60 s to close, and the file failed after all its tests had passed.
 */
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// Root on a closed machine: no sandbox, and nothing that phones home.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const CLOSE_WITHIN_MS = 10_000;

export interface TestBrowser {
  readonly browser: Browser;
  /** Closes politely; after 10 s kills the process and waits until it is gone. */
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  // A server rather than launch(): it is the API that hands out the process to kill.
  const server = await chromium.launchServer({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  let browser: Browser;
  try {
    browser = await chromium.connect(server.wsEndpoint());
  } catch (err) {
    await server.kill();
    throw err;
  }
  return {
    browser,
    async close() {
      let timer: NodeJS.Timeout | undefined;
      const polite = (async () => {
        await browser.close().catch(() => undefined);
        await server.close();
        return true;
      })();
      const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), CLOSE_WITHIN_MS); });
      const closed = await Promise.race([polite, late]).catch(() => false);
      clearTimeout(timer);
      if (!closed) {
        console.warn(`chromium did not close within ${CLOSE_WITHIN_MS} ms; killing it`);
        await server.kill();
      }
    },
  };
}
