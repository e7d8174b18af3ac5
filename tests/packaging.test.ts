/**
 * What a user sees of each publishable package on npm: an Apache-2.0 LICENSE file beside
 * package.json (npm ships it in every tarball), README images as absolute links into the published
 * package (npm renders no relative image without a repository URL) that point at files the tarball
 * ships, and the ESM note for CommonJS users. `pack.test.ts` checks the tarballs themselves.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const packages = readdirSync(join(root, 'packages'))
  .map((d) => ({ dir: join(root, 'packages', d), pj: JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8')) }))
  .filter((p) => !p.pj.private);

describe('packaging', () => {
  it('finds the publishable packages', () => {
    expect(packages.map((p) => p.pj.name).sort()).toEqual([
      '@mmlm/core',
      '@mmlm/data',
      '@mmlm/latentlm',
      '@mmlm/liquid',
      '@mmlm/maskllm',
      '@mmlm/mio',
      '@mmlm/seed',
    ]);
  });

  for (const { dir, pj } of packages) {
    it(`${pj.name}: Apache-2.0 LICENSE, absolute README images that the tarball ships, the ESM note`, () => {
      expect(pj.license).toBe('Apache-2.0');
      const license = readFileSync(join(dir, 'LICENSE'), 'utf8');
      expect(license).toMatch(/Apache License\s+Version 2\.0, January 2004/);
      expect(license).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'));
      const readme = readFileSync(join(dir, 'README.md'), 'utf8');
      const files: string[] = pj.files;
      for (const m of readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)) {
        const url = m[1]!;
        const prefix = `https://cdn.jsdelivr.net/npm/${pj.name}/`;
        expect(url.startsWith(prefix), `${pj.name} README image ${url} is not an absolute link into the package`).toBe(true);
        const rel = url.slice(prefix.length);
        expect(existsSync(join(dir, rel)), `${pj.name}: ${rel} does not exist`).toBe(true);
        expect(files.includes(rel) || files.some((f) => rel.startsWith(`${f}/`)), `${pj.name}: ${rel} is not in "files"`).toBe(true);
      }
      expect(readme, `${pj.name} README: the ESM note`).toMatch(/ESM only.*Node >= 20\.11.*"type": "module".*\.mjs.*CommonJS.*import\(/s);
    });
  }
});
