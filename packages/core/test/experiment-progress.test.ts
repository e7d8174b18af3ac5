/**
 * makeProgress's plain lines: the ETA of a resumed run counts only the steps this process ran, and
 * a sub-run with nothing left to run says so instead of "done at 0".
 */
import { describe, expect, it, vi } from 'vitest';
import { makeProgress } from '../src/experiment/progress.js';

describe('makeProgress (lines)', () => {
  it('estimates from the steps run here and names a run with nothing left', () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const progress = makeProgress('lines', (l) => lines.push(l), { isTTY: false } as NodeJS.WriteStream);
      // resumed at step 900 of 1000: the first step in 1 s leaves 99 s; 10 steps in 40 s (the
      // 30-s line) leave 90 steps, 360 s (from the absolute step it would be 0.4 and 4.0 s)
      const p = progress('arm', 1000);
      vi.advanceTimersByTime(1000);
      p.tick(901);
      vi.advanceTimersByTime(39_000);
      p.tick(910);
      p.done();
      expect(lines[0]).toMatch(/^arm: step 901\/1000 {4}\(1 s, eta 99 s\)$/);
      expect(lines[1]).toMatch(/^arm: step 910\/1000 {4}\(40 s, eta 360 s\)$/);
      expect(lines[2]).toBe('arm: done at 910/1000');
      const q = progress('vae', 1500);
      q.done();
      expect(lines[3]).toBe('vae: no step left to run (0 of 1500 here)');
    } finally {
      vi.useRealTimers();
    }
  });
});
