/**
 * Figures for reports: a vega-lite spec compiled to a vega view rendered headless to SVG
 * (renderer 'none', no canvas), then rasterised to PNG with resvg.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface LinePoint {
  x: number;
  y: number;
  series: string;
}

export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** DejaVu Sans shipped from npm, so figures have text on machines without system fonts. */
function fontFiles(): string[] {
  try {
    const dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    return [join(dir, 'DejaVuSans.ttf'), join(dir, 'DejaVuSans-Bold.ttf')];
  } catch {
    return [];
  }
}

export function svgToPng(svg: string, width = 900): Buffer {
  const r = new Resvg(svg, {
    fitTo: { mode: 'width', value: width },
    background: 'white',
    font: { fontFiles: fontFiles(), loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

export function lineChartSpec(points: LinePoint[], opts: { title: string; xTitle: string; yTitle: string; logY?: boolean }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: 560,
    height: 300,
    data: { values: points },
    mark: { type: 'line', point: points.length <= 60 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.xTitle },
      y: { field: 'y', type: 'quantitative', title: opts.yTitle, scale: opts.logY ? { type: 'log' } : { zero: false } },
      // long enough for sub-run names such as latentlm-sigma-vae/tokenizer (the default limit cuts at 160 px)
      color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 360 } },
    },
  };
}

export function barChartSpec(
  rows: { label: string; value: number; group?: string }[],
  opts: { title: string; yTitle: string },
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: 560,
    height: 300,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      x: { field: 'label', type: 'nominal', title: null, sort: null },
      y: { field: 'value', type: 'quantitative', title: opts.yTitle },
      color: { field: rows.some((r) => r.group) ? 'group' : 'label', type: 'nominal', legend: null },
    },
  };
}

/** Render a vega-lite spec straight to a PNG buffer. */
export async function renderPng(spec: TopLevelSpec, width = 900): Promise<Buffer> {
  return svgToPng(await specToSvg(spec), width);
}
