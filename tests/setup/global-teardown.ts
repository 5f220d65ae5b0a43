import type { ThrowawayPostgres } from '../../support/throwaway/postgres.js';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __SAFE_RUN_PG__?: ThrowawayPostgres }).__SAFE_RUN_PG__;
  await server?.stop();
}
