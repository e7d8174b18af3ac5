/**
 * Renders the lab's index.html in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core with executablePath) and checks that the tables and images are there. The
 * screenshot is saved to test-artifacts/ as a test artifact. Where Chromium is not installed the
 * test fails with the install command (in CI `.ci/run` installs it); set MMLM_SKIP_BROWSER=1 to
 * skip it deliberately on a machine without it.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Experiment } from '@mmlm/core/experiment';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { buildIndex, runExperiment } from '../src/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = process.env.MMLM_SKIP_BROWSER === '1';

const exp: Experiment = {
  id: 'test.browser',
  paper: 'Fake',
  claim: 'the report renders',
  presets: { tiny: { description: 'instant', expectedMinutes: 0 } },
  async run(ctx) {
    for (let s = 1; s <= 20; s++) ctx.metric({ step: s, loss: 2 / s, subrun: 'train' });
    return {
      metrics: { accuracy: 0.9 },
      tables: [
        {
          title: 'Ladder',
          columns: ['method', 'ppl'],
          rows: [
            ['dense', 3.1],
            ['sparse', 4.2],
          ],
        },
      ],
    };
  },
};

describe.skipIf(skip)('index.html in headless Chromium', () => {
  it('shows the runs table, the result tables and the figures', async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH, or MMLM_SKIP_BROWSER=1)`);
    const root = mkdtempSync(join(tmpdir(), 'lab-browser-'));
    await runExperiment(exp, { preset: 'tiny', seed: 0, outRoot: root, progress: 'none', log: () => {} });
    const index = buildIndex(root);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(`file://${index}`);
      expect(await page.locator('h1').textContent()).toBe('mmlm lab runs');
      const captions = await page.locator('table.data caption').allTextContents();
      expect(captions).toEqual(expect.arrayContaining(['Runs', 'Headline metrics', 'Ladder']));
      expect(await page.locator('table.data td', { hasText: 'sparse' }).count()).toBe(1);
      const img = page.locator('figure img').first();
      await img.waitFor();
      const natural = await img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth);
      expect(natural).toBeGreaterThan(100); // the loss PNG loaded
      const out = resolve(import.meta.dirname, '..', 'test-artifacts');
      mkdirSync(out, { recursive: true });
      await page.screenshot({ path: join(out, 'lab-index.png'), fullPage: true });
      expect(existsSync(join(out, 'lab-index.png'))).toBe(true);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
