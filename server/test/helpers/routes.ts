/**
 * The REST routes of a running Express app, found by walking its router stack (mounted routers
 * included), each with the access its first handler (the gate of http/middleware.ts) declares.
 */
import type { Express } from 'express';
import type { Access } from '../../src/auth/permissions';

/** One route of the app. */
export interface AppRoute {
  method: string;
  path: string;
  /** What the route's gate declares; null when the route has no gate (a defect). */
  access: Access | null;
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean>; stack: Array<{ handle: { access?: Access } }> };
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
}

function walk(stack: Layer[], prefix: string, out: AppRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m])) {
        // `app.all` routes are called with GET; a `*rest` wildcard with one segment.
        const path = (prefix + layer.route.path).replace(/\*[A-Za-z]+/g, 'x');
        out.push({ method: method === '_all' ? 'GET' : method.toUpperCase(), path, access: layer.route.stack[0]?.handle.access ?? null });
      }
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      walk(layer.handle.stack, prefix + mount, out);
    }
  }
}

/** Every route of `app`. */
export function appRoutes(app: Express): AppRoute[] {
  const out: AppRoute[] = [];
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '', out);
  return out;
}
