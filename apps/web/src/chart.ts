/**
 * A live loss chart drawn by hand in an <svg>: one polyline per series (training phases follow one
 * another along the x axis), a linear y axis with a few ticks. No chart library.
 */
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const W = 900;
const H = 300;
const PAD = { left: 56, right: 215, top: 14, bottom: 32 };

export class LossChart {
  private series = new Map<string, { start: number; values: number[] }>();
  private count = 0;

  constructor(private readonly svg: SVGSVGElement) {
    this.draw();
  }

  reset(): void {
    this.series.clear();
    this.count = 0;
    this.draw();
  }

  add(name: string, value: number): void {
    let s = this.series.get(name);
    if (!s) {
      s = { start: this.count, values: [] };
      this.series.set(name, s);
    }
    s.values.push(value);
    this.count++;
  }

  draw(): void {
    const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
      const e = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const kids: Element[] = [];
    const all = [...this.series.values()].flatMap((s) => s.values).filter(Number.isFinite);
    const lo = all.length ? Math.min(...all) : 0;
    const hi = all.length ? Math.max(...all) : 1;
    const span = hi - lo || 1;
    const y0 = lo - 0.05 * span;
    const y1 = hi + 0.05 * span;
    const n = Math.max(this.count - 1, 1);
    const px = (i: number) => PAD.left + (i / n) * (W - PAD.left - PAD.right);
    const py = (v: number) => PAD.top + (1 - (v - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
    kids.push(el('rect', { x: 0, y: 0, width: W, height: H, fill: '#fff' }));
    for (let k = 0; k <= 4; k++) {
      const v = y0 + ((y1 - y0) * k) / 4;
      const y = py(v);
      kids.push(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, stroke: '#eee' }));
      kids.push(el('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#666' }, v.toFixed(2)));
    }
    kids.push(el('line', { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom, stroke: '#999' }));
    kids.push(el('line', { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, stroke: '#999' }));
    kids.push(
      el(
        'text',
        { x: (PAD.left + W - PAD.right) / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 12, fill: '#444' },
        `training step (${this.count} in all)`,
      ),
    );
    kids.push(
      el(
        'text',
        { x: 14, y: H / 2, transform: `rotate(-90 14 ${H / 2})`, 'text-anchor': 'middle', 'font-size': 12, fill: '#444' },
        'loss (nats/token)',
      ),
    );
    let row = 0;
    for (const [name, s] of this.series) {
      const color = COLORS[row % COLORS.length]!;
      const pts = s.values.map((v, i) => `${px(s.start + i).toFixed(1)},${py(Number.isFinite(v) ? v : y1).toFixed(1)}`).join(' ');
      kids.push(el('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 1.6, 'data-series': name }));
      const ly = PAD.top + 8 + row * 18;
      kids.push(el('line', { x1: W - PAD.right + 10, x2: W - PAD.right + 28, y1: ly, y2: ly, stroke: color, 'stroke-width': 3 }));
      kids.push(el('text', { x: W - PAD.right + 34, y: ly + 4, 'font-size': 11, fill: '#333' }, name));
      row++;
    }
    if (!this.count)
      kids.push(
        el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: '#999' }, 'the loss curve appears here while a run trains'),
      );
    this.svg.replaceChildren(...kids);
  }
}
