import { WordTokenizer } from '@mmlm/data';
import { describe, expect, it } from 'vitest';
import { chatExample, IGNORE_INDEX, MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM, MultimodalTokenizer, renderChat } from '../src/index.js';

const conv = [
  { role: 'user' as const, content: 'What am I eating?' },
  { role: 'assistant' as const, content: 'You are eating <image_placeholder_0>.' },
  { role: 'user' as const, content: 'What is the girl eating?' },
];

describe('renderChat (apply_chat_template, tokenize=False)', () => {
  it('std mode with a generation prompt', () => {
    expect(renderChat(conv)).toBe(
      `<|im_start|>system\n${MIO_STD_MODE_SYSTEM}<|im_end|>\n` +
        '<|im_start|>user\nWhat am I eating?<|im_end|>\n' +
        '<|im_start|>assistant\nYou are eating <image_placeholder_0>.<|im_end|>\n' +
        '<|im_start|>user\nWhat is the girl eating?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('voice mode without a generation prompt, with a BOS string', () => {
    expect(renderChat(conv.slice(0, 2), { mode: 'voice', addGenerationPrompt: false, bos: '<|startoftext|>' })).toBe(
      `<|startoftext|><|im_start|>system\n${MIO_VOICE_MODE_SYSTEM}<|im_end|>\n` +
        '<|im_start|>user\nWhat am I eating?<|im_end|>\n' +
        '<|im_start|>assistant\nYou are eating <image_placeholder_0>.<|im_end|>',
    );
    expect(MIO_VOICE_MODE_SYSTEM).toBe(
      'You are MIO, an AI assistant capable of understanding images, text, videos, and speech, and generating speech. Please respond to the user with speech only, starting with <spch> and ending with </spch>.',
    );
  });

  it('custom mode takes the first turn as the system; bad modes and roles are named', () => {
    expect(renderChat([{ role: 'system', content: 'Be brief.' }, conv[0]!], { addGenerationPrompt: false, mode: 'custom' })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat am I eating?<|im_end|>',
    );
    expect(() => renderChat(conv, { mode: 'custom' })).toThrow('in custom mode the first turn must be the system, got user');
    expect(() => renderChat(conv, { mode: 'loud' as never })).toThrow('unknown mode "loud", expected std, voice or custom');
    expect(() => renderChat([{ role: 'tool' as never, content: '' }])).toThrow('unknown role "tool"');
  });
});

describe('chatExample (Stage IV label mask)', () => {
  const specials = ['<pad>', '<bos>', '<eos>', '<unk>', '<|im_start|>', '<|im_end|>'];
  const words = WordTokenizer.fromText(['system user assistant say a red circle', MIO_STD_MODE_SYSTEM], { specialTokens: specials });
  const text = {
    vocabSize: words.vocabSize,
    encode: (s: string) => words.encode(s, { allowedSpecial: 'all' }),
    decode: (ids: ArrayLike<number>) => words.decode(ids),
  };
  const tok = new MultimodalTokenizer(text, { textVocabSize: words.vocabSize });

  it('puts loss on assistant responses and their <|im_end|> only', () => {
    const ex = chatExample(tok, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'say' },
          { type: 'speech', levels: [[1, 2]] },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'a red circle' },
          { type: 'image', codes: [1, 2, 3, 4] },
        ],
      },
    ]);
    expect(ex.labels.length).toBe(ex.ids.length);
    const kept = ex.ids.filter((_, i) => ex.labels[i] !== IGNORE_INDEX);
    expect(kept).toEqual([
      ...tok.encode([
        { type: 'text', text: 'a red circle' },
        { type: 'image', codes: [1, 2, 3, 4] },
      ]),
      words.specialId('<|im_end|>'),
    ]);
    // the whole sequence reads back as the ChatML conversation
    const doc = tok.decode(ex.ids);
    expect(doc[0]).toEqual({
      type: 'text',
      text: `<|im_start|> system ${MIO_STD_MODE_SYSTEM.toLowerCase()} <|im_end|> <|im_start|> user say`,
    });
    expect(doc[1]).toEqual({ type: 'speech', levels: [[1, 2]] });
  });
});
