/** Labelled image grids for reports (sample grids with prompts and analyzer verdicts). */
import { encodePng } from '@mmlm/data';
import { svgToPng } from './plot.js';

export interface GridCell {
  /** [size * size * 3] HWC RGB in [0, 1]. */
  image: Float32Array;
  size: number;
  /** Text lines under the image (prompt, verdict). */
  lines: string[];
  /** Frame colour: green when true, red when false, none when undefined. */
  ok?: boolean;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/**
 * A sample grid for reports: each image scaled up with nearest-neighbour pixels, its prompt and
 * verdict written under it, composed as SVG (images as PNG data URIs from @mmlm/data's encoder)
 * and rasterised with resvg like the charts.
 */
export async function labelledGridPng(cells: GridCell[], opts: { cols: number; title?: string; cellPx?: number }): Promise<Buffer> {
  if (cells.length === 0) throw new Error('labelledGridPng: no images');
  const cellPx = opts.cellPx ?? 128;
  const lineH = 13;
  const maxLines = Math.max(...cells.map((c) => c.lines.length));
  const cols = Math.min(opts.cols, cells.length);
  const rows = Math.ceil(cells.length / cols);
  const cellW = Math.max(cellPx, 210);
  const cellH = cellPx + 8 + maxLines * lineH + 10;
  const top = opts.title ? 28 : 6;
  const width = cols * cellW + 12;
  const height = top + rows * cellH + 6;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (opts.title)
    parts.push(`<text x="8" y="18" font-size="14" font-weight="bold" font-family="DejaVu Sans">${escapeXml(opts.title)}</text>`);
  for (const [i, c] of cells.entries()) {
    const x = 6 + (i % cols) * cellW + (cellW - cellPx) / 2;
    const y = top + Math.floor(i / cols) * cellH;
    const png = Buffer.from(encodePng(c.image, c.size, c.size)).toString('base64');
    if (c.ok !== undefined)
      parts.push(`<rect x="${x - 3}" y="${y - 3}" width="${cellPx + 6}" height="${cellPx + 6}" fill="${c.ok ? '#2a9d3a' : '#d62728'}"/>`);
    parts.push(
      `<image x="${x}" y="${y}" width="${cellPx}" height="${cellPx}" image-rendering="optimizeSpeed" preserveAspectRatio="none" xlink:href="data:image/png;base64,${png}"/>`,
    );
    for (const [j, line] of c.lines.entries()) {
      const tx = 6 + (i % cols) * cellW + cellW / 2;
      parts.push(
        `<text x="${tx}" y="${y + cellPx + 8 + (j + 1) * lineH - 2}" font-size="10.5" text-anchor="middle" font-family="DejaVu Sans">${escapeXml(line.length > 36 ? `${line.slice(0, 35)}…` : line)}</text>`,
      );
    }
  }
  parts.push('</svg>');
  return svgToPng(parts.join(''), width);
}
