import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each suite starts real servers (Temporal, PostgreSQL, LiveKit): no more parallel files than
    // the 2 cores the CI machine has, and limits that hold on a shared, busy machine (a load of 12
    // on 2 cores was seen): they only bound a test that hangs, a healthy one ends long before. Tests
    // set no shorter limits of their own; server start-up has its own deadline
    // (CALL_CAMPAIGNS_SERVER_START_SECONDS).
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
