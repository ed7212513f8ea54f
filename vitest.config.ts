import { defineConfig } from 'vitest/config';

// Two projects: unit tests run in parallel; integration tests start real servers (Kafka, Redis,
// nginx, chDB) and are run with --no-file-parallelism (see package.json) so two files never
// fight over ports or the CPU.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{services,packages}/*/src/**/*.test.ts', 'scripts/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['{services,packages}/*/src/**/*.integration.test.ts', 'e2e/**/*.integration.test.ts', 'scripts/**/*.integration.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
