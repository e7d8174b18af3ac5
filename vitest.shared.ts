// Shared vitest settings for every workspace project. Workspace packages resolve to their
// TypeScript sources through the "@mmlm/source" export condition, so tests need no build.
import { defineConfig } from 'vitest/config';

export const shared = defineConfig({
  resolve: { conditions: ['@mmlm/source', 'import', 'module', 'node', 'default'] },
  ssr: { resolve: { conditions: ['@mmlm/source', 'import', 'module', 'node', 'default'] } },
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tfjs is CPU-bound; two cores, two workers.
    maxWorkers: 2,
  },
});
