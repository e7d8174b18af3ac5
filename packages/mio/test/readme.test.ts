/** The README's usage example, verbatim between the markers (the README adds only the import lines above them), and its schedule tables. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WordTokenizer } from '@mmlm/data';
import { type MioDocument, MultimodalTokenizer, schedulePreset, scheduleTable } from '@mmlm/mio';
import { expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

it('the README shows this example verbatim', () => {
  const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const body = self.split('// --- README example start ---\n')[1]!.split('  // --- README example end ---')[0]!;
  const snippet = body
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
    .trimEnd();
  expect(readme).toContain(snippet);
});

it('the README shows the resolved paper and small schedules', () => {
  expect(readme).toContain(scheduleTable(schedulePreset('paper')));
  expect(readme).toContain(scheduleTable(schedulePreset('small')));
});

it('README usage example', () => {
  // --- README example start ---
  const words = WordTokenizer.fromText('the caption of this image is: a red circle above a blue square');
  const tok = new MultimodalTokenizer(words, {
    textVocabSize: words.vocabSize, // text ids first: [0, V)
    imageCodes: 16, // <img0> .. <img15> (MIO: 8,192 SEED-2 codes)
    tokensPerImage: 4, // (MIO: 32)
    speechCodebookSize: 8, // per level (MIO: 1,024)
    speechLevels: 4, // <spch{8 l + c}> (MIO: <spch{1024 l + c}>)
  });
  const content = [5, 1, 2]; // speech level 0 (content), 3 frames
  const doc: MioDocument = [
    { type: 'image', codes: [3, 0, 15, 7] },
    { type: 'text', text: 'the caption of this image is: a red circle above a blue square' },
    { type: 'speech', levels: [content] }, // input speech: content codes only
    { type: 'speech', levels: [content, [0, 7, 7], [3, 3, 1], [6, 0, 2]] }, // output speech: 4 levels, sequential
  ];
  const ids = tok.encode(doc); // ids of one vocabulary of V + 16 + 4 x 8 + 4
  const back = tok.decode(ids); // deep-equals doc
  const mio = tok.render(doc); // MIO's string form
  // '<image><img3><img0><img15><img7></image>the caption of this image is: a red circle above a blue square'
  // + '<spch><spch5><spch1><spch2></spch><spch><spch5><spch1><spch2><spch8><spch15><spch15>...<spch26></spch>'
  // --- README example end ---
  expect(back).toEqual(doc);
  expect(tok.size).toBe(words.vocabSize + 16 + 32 + 4);
  expect(ids.length).toBe(6 + 14 + 5 + 14);
  expect(tok.parse(mio)).toEqual(doc);
  expect(
    mio.startsWith(
      '<image><img3><img0><img15><img7></image>the caption of this image is: a red circle above a blue square<spch><spch5><spch1><spch2></spch><spch><spch5><spch1><spch2><spch8><spch15><spch15>',
    ),
  ).toBe(true);
  expect(mio.endsWith('<spch26></spch>')).toBe(true);
});
