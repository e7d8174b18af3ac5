/**
 * Writes the README's sample image grids into docs/:
 *   pnpm --filter @mmlm/data sample-images
 * shapes-samples.png (32 training images, 32 px, with their captions in shapes-samples.txt),
 * edit-pairs.png (source / target pairs), clips.png (frames of clips, one clip per row) and
 * interleaved.png (the images of one story, its text in interleaved.txt).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipsDataset, EditPairsDataset, InterleavedDataset, ShapesDataset } from '../src/images/index.js';
import { writeImageGrid } from '../src/io/index.js';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');
mkdirSync(docs, { recursive: true });
const grid = { size: 32, pad: 2, scale: 3 };

const shapes = new ShapesDataset({ seed: 0, imageSize: 32, background: 'random' });
const samples = Array.from({ length: 32 }, (_, i) => shapes.sample(i));
writeImageGrid(
  join(docs, 'shapes-samples.png'),
  samples.map((s) => s.image),
  { ...grid, cols: 8 },
);
writeFileSync(join(docs, 'shapes-samples.txt'), `${samples.map((s, i) => `${i}: ${s.caption}`).join('\n')}\n`);

const edits = new EditPairsDataset({ seed: 0, imageSize: 32 });
const pairs = Array.from({ length: 8 }, (_, i) => edits.sample(i));
writeImageGrid(
  join(docs, 'edit-pairs.png'),
  pairs.flatMap((p) => [p.source, p.target]),
  { ...grid, cols: 4 },
);
writeFileSync(join(docs, 'edit-pairs.txt'), `${pairs.map((p, i) => `${i}: ${p.instruction}`).join('\n')}\n`);

const clips = new ClipsDataset({ seed: 0, imageSize: 32, frames: 8, directions: ['up', 'down', 'left', 'right', 'down and right'] });
const cs = Array.from({ length: 4 }, (_, i) => clips.sample(i));
writeImageGrid(
  join(docs, 'clips.png'),
  cs.flatMap((c) => c.frames),
  { ...grid, cols: 8 },
);
writeFileSync(join(docs, 'clips.txt'), `${cs.map((c, i) => `${i}: ${c.description}`).join('\n')}\n`);

const story = new InterleavedDataset({ seed: 0, imageSize: 32, minSentences: 4, maxSentences: 4 }).sample(0);
writeImageGrid(join(docs, 'interleaved.png'), story.images, { ...grid, cols: story.images.length });
writeFileSync(join(docs, 'interleaved.txt'), `${story.text}\n`);
console.log(`wrote ${docs}/{shapes-samples,edit-pairs,clips,interleaved}.png`);
