import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'e2e/**/*.test.ts'],
    environment: 'node',
    // No `keytally serve` a test spawned outlives the run, even when a suite fails before stop().
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores: two files at a time; each file gets its own databases, so they do not interfere.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
