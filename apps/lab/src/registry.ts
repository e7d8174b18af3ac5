/**
 * Every experiment the lab knows: the lists the paper packages export from their `experiments`
 * subpath, plus the lab's own (comparative experiments and the tiny-GPT smoke run).
 */
import { checkPreset, type Experiment, UsageError } from '@mmlm/core/experiment';
import { experiments as latentlmExperiments } from '@mmlm/latentlm/experiments';
import { experiments as liquidExperiments } from '@mmlm/liquid/experiments';
import { experiments as maskllmExperiments } from '@mmlm/maskllm/experiments';
import { experiments as mioExperiments } from '@mmlm/mio/experiments';
import { experiments as seedExperiments } from '@mmlm/seed/experiments';
import { labExperiments } from './experiments/index.js';

/** Paper package -> its exported experiments (what `mmlm-lab list` shows). */
export const PAPER_PACKAGES: Record<string, readonly Experiment[]> = {
  '@mmlm/maskllm': maskllmExperiments,
  '@mmlm/latentlm': latentlmExperiments,
  '@mmlm/liquid': liquidExperiments,
  '@mmlm/seed': seedExperiments,
  '@mmlm/mio': mioExperiments,
};

export function allExperiments(): Experiment[] {
  const all = [...labExperiments, ...Object.values(PAPER_PACKAGES).flat()];
  const seen = new Set<string>();
  for (const e of all) {
    if (seen.has(e.id)) throw new Error(`duplicate experiment id "${e.id}"`);
    seen.add(e.id);
  }
  return all;
}
/**
 * The curated main job (README's first command), <= 5 minutes on a 2-core CPU: the discrete-vs-
 * continuous image-token comparison at its quick preset, then a small sparsity ladder.
 */
export const QUICKSTART: { id: string; preset: string }[] = [
  { id: 'lab.image-tokens', preset: 'quick' },
  { id: 'maskllm.ladder', preset: 'quick' },
];

export interface Target {
  experiment: Experiment;
  preset: string;
}

/** An experiment id, a paper name (all its experiments) or 'quickstart'; a bad name or preset throws UsageError. */
export function resolveTargets(target: string, preset?: string): Target[] {
  const all = allExperiments();
  const byId = new Map(all.map((e) => [e.id, e]));
  const pick = (e: Experiment, p: string): Target => {
    checkPreset(e, p);
    return { experiment: e, preset: p };
  };
  if (target === 'quickstart') return QUICKSTART.map((q) => pick(byId.get(q.id)!, preset ?? q.preset));
  const exact = byId.get(target);
  if (exact) return [pick(exact, preset ?? 'small')];
  const paper = all.filter((e) => e.paper.toLowerCase() === target.toLowerCase());
  if (paper.length) return paper.map((e) => pick(e, preset ?? 'small'));
  const papers = [...new Set(all.map((e) => e.paper))];
  throw new UsageError(
    `unknown experiment or paper "${target}"; experiments: ${all.map((e) => e.id).join(', ')}; papers: ${papers.join(', ')}`,
  );
}
