import { beforeAll, describe, expect, it } from 'vitest';
import {
  blockDiagonalMask,
  manualSeed,
  paddingMask,
  StateDictError,
  TransformerDecoder,
  type TransformerDecoderConfig,
  tf,
} from '../../src/index.js';
import { runModelContract, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const tiny = (over: Partial<TransformerDecoderConfig> = {}): TransformerDecoderConfig => ({
  vocabSize: 11,
  dim: 16,
  numLayers: 2,
  numHeads: 4,
  maxSeqLen: 12,
  seed: 1,
  ...over,
});

const variants: [string, Partial<TransformerDecoderConfig>][] = [
  ['gpt2 (layernorm, gelu, learned positions)', {}],
  ['llama (rmsnorm, swiglu, rope half, gqa, no bias)', { norm: 'rmsnorm', mlp: 'swiglu', pos: 'rope', numKvHeads: 2, bias: false }],
  [
    'latentlm (rope interleaved linspace, tied)',
    { norm: 'rmsnorm', mlp: 'swiglu', pos: 'rope', ropeStyle: 'interleaved', ropeFreqs: 'linspace', tieEmbeddings: true, bias: false },
  ],
];

describe('TransformerDecoder', () => {
  it('has the gpt-bench parameter count (3,323,392)', () => {
    const m = new TransformerDecoder({ vocabSize: 256, dim: 256, numLayers: 4, numHeads: 4, maxSeqLen: 128, seed: 0 });
    expect(m.numParameters()).toBe(3_323_392);
    m.dispose();
  });

  it('names parameters by dotted path', () => {
    const m = new TransformerDecoder(tiny({ numLayers: 1 }));
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      'tok_embed.weight',
      'pos_embed.weight',
      'blocks.0.norm1.weight',
      'blocks.0.norm1.bias',
      'blocks.0.attn.qkv.weight',
      'blocks.0.attn.qkv.bias',
      'blocks.0.attn.proj.weight',
      'blocks.0.attn.proj.bias',
      'blocks.0.norm2.weight',
      'blocks.0.norm2.bias',
      'blocks.0.mlp.fc1.weight',
      'blocks.0.mlp.fc1.bias',
      'blocks.0.mlp.fc2.weight',
      'blocks.0.mlp.fc2.bias',
      'norm.weight',
      'norm.bias',
      'head.weight',
    ]);
  });

  it('rejects invalid configs, long inputs and bad state dicts with clear errors', () => {
    expect(() => new TransformerDecoder(tiny({ dim: 10, numHeads: 4 }))).toThrow(/dim \(10\) must be divisible by numHeads \(4\)/);
    expect(() => new TransformerDecoder(tiny({ numKvHeads: 3 }))).toThrow(/numKvHeads \(3\) must divide numHeads \(4\)/);
    expect(() => new TransformerDecoder(tiny({ numLayers: 0 }))).toThrow(/numLayers must be a positive integer, got 0/);
    const m = new TransformerDecoder(tiny());
    expect(() => m.forward(tf.zeros([1, 13], 'int32'))).toThrow(/13 positions .* exceeds maxSeqLen 12/);
    const sd = { ...m.stateDict() };
    const bad = { ...sd, 'head.weight': tf.zeros([3, 3]), extra: tf.zeros([1]) } as Record<string, tf.Tensor>;
    delete bad['norm.bias'];
    try {
      m.loadStateDict(bad);
      throw new Error('should have thrown');
    } catch (e) {
      expect(e).toBeInstanceOf(StateDictError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/missing keys: norm.bias/);
      expect(msg).toMatch(/unexpected keys: extra/);
      expect(msg).toMatch(/head.weight expected \[11,16\] got \[3,3\]/);
    }
    m.dispose();
  });

  it('freeze and unfreeze by path', () => {
    const m = new TransformerDecoder(tiny());
    const all = m.numParameters();
    m.freeze((p) => !p.startsWith('head.'));
    expect(m.numParameters({ trainableOnly: true })).toBe(11 * 16);
    m.unfreeze();
    expect(m.numParameters({ trainableOnly: true })).toBe(all);
    m.dispose();
  });
});

for (const backend of TEST_BACKENDS) {
  describe(`TransformerDecoder on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    for (const [name, over] of variants) {
      it(`KV-cache decoding equals the parallel forward: ${name}`, () => {
        const m = new TransformerDecoder(tiny(over));
        m.eval();
        const ids = tf.tensor2d(
          [
            [1, 5, 3, 7, 2, 9, 4, 0],
            [2, 2, 8, 1, 6, 3, 10, 5],
          ],
          undefined,
          'int32',
        );
        const full = m.forward(ids); // [2, 8, V]
        const cache = m.newCache();
        // a 3-token prompt, then one token at a time
        const parts = [tf.slice(ids, [0, 0], [2, 3]), ...[3, 4, 5, 6, 7].map((t) => tf.slice(ids, [0, t], [2, 1]))];
        const steps = parts.map((p) => m.forward(p, { cache }));
        const inc = tf.concat(steps, 1);
        const d = tf.abs(full.sub(inc)).max().dataSync()[0]!;
        expect(d).toBeLessThanOrEqual(1e-4);
        expect(cache.length).toBe(8);
        cache.dispose();
        m.dispose();
      });
    }

    it('padding and block-diagonal masks isolate positions', () => {
      const m = new TransformerDecoder(tiny({ pos: 'rope', norm: 'rmsnorm' }));
      // Packed: [a b | c d]; with the block-diagonal mask, the second sample's logits equal those of
      // running it alone (RoPE is relative, so the offset does not matter).
      const packed = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
      const alone = m.forward(tf.tensor2d([[3, 4]], undefined, 'int32'));
      const got = m.forward(packed, { mask: blockDiagonalMask([[0, 0, 1, 1]]) });
      expect(
        tf
          .abs(tf.slice(got, [0, 2, 0], [1, 2, 11]).sub(alone))
          .max()
          .dataSync()[0]!,
      ).toBeLessThan(1e-4);
      // Right padding: real positions are unaffected by pad tokens.
      const a = m.forward(tf.tensor2d([[5, 6, 0, 0]], undefined, 'int32'), { mask: paddingMask(tf.tensor2d([[1, 1, 0, 0]])) });
      const b = m.forward(tf.tensor2d([[5, 6]], undefined, 'int32'));
      expect(
        tf
          .abs(tf.slice(a, [0, 0, 0], [1, 2, 11]).sub(b))
          .max()
          .dataSync()[0]!,
      ).toBeLessThan(1e-5);
      m.dispose();
    });
  });
}

describe('TransformerDecoder contract', () => {
  for (const [name, over] of variants) {
    it(name, async () => {
      const r = await runModelContract({
        name,
        make: (seed) => {
          manualSeed(seed);
          return new TransformerDecoder(tiny({ ...over, seed }));
        },
        inputs: () => [tf.tensor2d([[1, 5, 3, 7, 2]], undefined, 'int32')],
        forward: (m, [ids]) => m.forward(ids!),
        expectedShape: [1, 5, 11],
      });
      expect(r.maxCrossBackendDiff).toBeLessThan(1e-3);
    });
  }

  it("checks the package's own training step for leaks when given (a leaking step fails, a clean one passes)", async () => {
    const base = {
      name: 'own step',
      make: (seed: number) => new TransformerDecoder(tiny({ seed })),
      inputs: () => [tf.tensor2d([[1, 5, 3, 7, 2]], undefined, 'int32')],
      forward: (m: TransformerDecoder, [ids]: tf.Tensor[]) => m.forward(ids!),
      expectedShape: [1, 5, 11],
      backends: ['cpu'] as const,
    };
    const kept: tf.Tensor[] = [];
    const leaky = (m: TransformerDecoder) => ({
      step: ([ids]: tf.Tensor[]) => void kept.push(m.forward(ids!)), // forgets to dispose its output
      dispose: () => {},
    });
    await expect(runModelContract({ ...base, trainStep: leaky })).rejects.toThrow(/tensor leak over the package's training step/);
    for (const t of kept) t.dispose();
    let steps = 0;
    const clean = (m: TransformerDecoder) => ({
      step: ([ids]: tf.Tensor[]) => {
        steps++;
        tf.tidy(() => m.forward(ids!).sum().dataSync());
      },
      dispose: () => {},
    });
    await runModelContract({ ...base, trainStep: clean });
    expect(steps).toBe(3);
  });
});
