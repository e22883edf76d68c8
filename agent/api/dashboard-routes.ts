/** The dashboard: three static files, read once. */
import type { FastifyPluginAsync } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project-paths.js';

const FILES: Record<string, string> = {
  '/': 'index.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const dir = join(PROJECT_ROOT, 'agent', 'api', 'dashboard');
  for (const [path, file] of Object.entries(FILES)) {
    const full = join(dir, file);
    if (!existsSync(full)) continue;
    const body = readFileSync(full);
    const type = TYPES[file.split('.').pop() as string] ?? 'application/octet-stream';
    app.get(path, async (_request, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  }
};
