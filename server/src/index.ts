/**
 * Package entry point for other projects. Frontends import the router type only:
 *
 *   import type { AppRouter } from '@smedrec/audit-server';
 *
 * Verification code (pure, no server code paths) is under `@smedrec/audit-server/verify`.
 */
export type { AppRouter } from './trpc/routers';
