// Root config: `pnpm vitest` runs every project at once; `pnpm test` runs them through turbo.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { projects: ['packages/*', 'apps/*', 'tests'] },
});
