// Tests are compiled with the rest of the project (tsc -> dist/tests) and run as plain ESM,
// so jest runs exactly the JavaScript that ships. SAFE_RUN_DIST lets a second build tree
// (e.g. a parallel worktree) run its own copy.
const dist = process.env.SAFE_RUN_DIST ?? 'dist';

export default {
  roots: [`<rootDir>/${dist}/tests`],
  testMatch: ['**/*.test.js'],
  globalSetup: `<rootDir>/${dist}/tests/setup/global-setup.js`,
  globalTeardown: `<rootDir>/${dist}/tests/setup/global-teardown.js`,
  testEnvironment: 'node',
  transform: {},
  maxWorkers: 2,
  testTimeout: 60_000,
};
