/**
 * Every experiment the lab knows: the lists the paper packages export, plus the lab's own.
 */
import type { Experiment } from '@mmlm/core';
import { labExperiments } from './experiments/index.js';

export function allExperiments(): Experiment[] {
  const all = [...labExperiments];
  const seen = new Set<string>();
  for (const e of all) {
    if (seen.has(e.id)) throw new Error(`duplicate experiment id "${e.id}"`);
    seen.add(e.id);
  }
  return all;
}

/** The curated main job: runs in minutes on a 2-core CPU and ends with the report's path. */
export const QUICKSTART: { id: string; preset: string }[] = [{ id: 'core.tiny-gpt', preset: 'quick' }];

export interface Target {
  experiment: Experiment;
  preset: string;
}

/** An experiment id, a paper name (all its experiments) or 'quickstart'. */
export function resolveTargets(target: string, preset?: string): Target[] {
  const all = allExperiments();
  const byId = new Map(all.map((e) => [e.id, e]));
  const pick = (e: Experiment, p: string): Target => {
    if (!e.presets[p]) throw new Error(`experiment "${e.id}" has no preset "${p}"; expected one of: ${Object.keys(e.presets).join(', ')}`);
    return { experiment: e, preset: p };
  };
  if (target === 'quickstart') return QUICKSTART.map((q) => pick(byId.get(q.id)!, preset ?? q.preset));
  const exact = byId.get(target);
  if (exact) return [pick(exact, preset ?? 'small')];
  const paper = all.filter((e) => e.paper.toLowerCase() === target.toLowerCase());
  if (paper.length) return paper.map((e) => pick(e, preset ?? 'small'));
  const papers = [...new Set(all.map((e) => e.paper))];
  throw new Error(`unknown experiment or paper "${target}"; experiments: ${all.map((e) => e.id).join(', ')}; papers: ${papers.join(', ')}`);
}
