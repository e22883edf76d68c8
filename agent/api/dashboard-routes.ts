/**
 * The dashboard: its three files, and the plotting library (uPlot, from the
 * package's node_modules), read once. Nothing comes from a CDN: the page
 * works on a routing node without Internet access.
 */
import type { FastifyPluginAsync } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project-paths.js';

const dashboardDir = join(PROJECT_ROOT, 'agent', 'api', 'dashboard');
const resolve = createRequire(import.meta.url).resolve;

const FILES: Record<string, () => string> = {
  '/': () => join(dashboardDir, 'index.html'),
  '/dashboard.js': () => join(dashboardDir, 'dashboard.js'),
  '/dashboard.css': () => join(dashboardDir, 'dashboard.css'),
  '/uplot.min.js': () => resolve('uplot/dist/uPlot.iife.min.js'),
  '/uplot.min.css': () => resolve('uplot/dist/uPlot.min.css'),
};

/** The dashboard's paths: they hold no data, so reads need no token. */
export const DASHBOARD_PATHS = Object.keys(FILES);

const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  for (const [path, locate] of Object.entries(FILES)) {
    let full: string;
    try {
      full = locate();
    } catch (err) {
      app.log.warn({ path, err }, 'a file of the dashboard is missing (uPlot not installed?)');
      continue;
    }
    if (!existsSync(full)) {
      app.log.warn({ path, file: full }, 'a file of the dashboard is missing');
      continue;
    }
    const body = readFileSync(full);
    const type = TYPES[full.split('.').pop() as string] ?? 'application/octet-stream';
    app.get(path, async (_request, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  }
};
