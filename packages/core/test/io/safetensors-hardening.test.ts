/**
 * safetensors loader hardening (issue "Hardening", findings A1–A6 of the fuzzing audit): names that
 * are Object.prototype members, duplicate keys, deep nesting, huge values in messages, null
 * metadata. The files are built by hand (header text + data), independent of our writer.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensorsHost,
  type HostTensor,
  loadSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  SafetensorsError,
  showValue,
  tf,
} from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'st-hard-'));

/** A file from raw header text and a data section. */
function file(header: string, data: ArrayLike<number> = []): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}

const f32 = (...v: number[]) => Array.from(new Uint8Array(Float32Array.from(v).buffer));

/** The error decodeSafetensors throws, or null. */
function errorOf(bytes: Uint8Array): unknown {
  try {
    const { tensors } = decodeSafetensors(bytes, { name: 'x.st' });
    for (const t of Object.values(tensors)) t.dispose();
    return null;
  } catch (e) {
    return e;
  }
}

function expectError(bytes: Uint8Array, re: RegExp): SafetensorsError {
  const e = errorOf(bytes);
  expect(e).toBeInstanceOf(SafetensorsError);
  expect((e as Error).message).toMatch(re);
  return e as SafetensorsError;
}

describe('safetensors hardening', () => {
  beforeAll(async () => useBackend('cpu'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('A1: tensors named __proto__, constructor, toString are ordinary own keys', async () => {
    const bytes = file(
      '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
        '"constructor":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},' +
        '"toString":{"dtype":"F32","shape":[],"data_offsets":[12,16]}}',
      [...f32(1), ...f32(2, 3), ...f32(4)],
    );
    const n0 = tf.memory().numTensors;
    const { tensors } = decodeSafetensors(bytes);
    expect(Object.keys(tensors).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getPrototypeOf(tensors)).toBeNull();
    expect(Object.hasOwn(tensors, '__proto__')).toBe(true);
    const get = (k: string) => tensors[k]!;
    expect(Array.from(get('__proto__').dataSync())).toEqual([1]);
    expect(Array.from(get('constructor').dataSync())).toEqual([2, 3]);
    expect(get('toString').shape).toEqual([]);
    // a dispose-all over Object.values reaches every tensor
    expect(tf.memory().numTensors).toBe(n0 + 3);
    for (const t of Object.values(tensors)) t.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    // a name that is not in the file is absent, not an Object.prototype member
    expect(decodeSafetensors(file('{}')).tensors.hasOwnProperty).toBeUndefined();

    expect(
      parseSafetensors(bytes)
        .entries.map((e) => e.name)
        .sort(),
    ).toEqual(['__proto__', 'constructor', 'toString']);
    const header = parseSafetensorsHeader(bytes);
    expect(Object.keys(header.tensors).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    // biome-ignore lint/suspicious/noProto: a __proto__ key as plain data is what this test checks
    expect(header.tensors.__proto__!.shape).toEqual([1]);
    const p = join(dir, 'proto.safetensors');
    writeFileSync(p, bytes);
    expect(Object.keys((await readSafetensorsHeader(p)).tensors).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    const loaded = (await loadSafetensors(p)).tensors;
    expect(Object.keys(loaded).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    for (const t of Object.values(loaded)) t.dispose();

    // the writer keeps such names too (a record built with Object.defineProperty / null prototype)
    const host: Record<string, HostTensor> = Object.create(null);
    // biome-ignore lint/suspicious/noProto: a __proto__ key as plain data is what this test checks
    host.__proto__ = { dtype: 'F32', shape: [1], data: Float32Array.of(5) };
    host.constructor = { dtype: 'I32', shape: [1], data: Int32Array.of(6) } as never;
    const back = parseSafetensors(encodeSafetensorsHost(host));
    expect(back.entries.map((e) => [e.name, Array.from(e.data)])).toEqual([
      ['__proto__', [5]],
      ['constructor', [6]],
    ]);
  });

  it('A2: a __proto__ key in __metadata__ is kept as an own key', async () => {
    const bytes = file('{"__metadata__":{"__proto__":"p","constructor":"c","a":"1"}}');
    const { metadata } = decodeSafetensors(bytes);
    expect(Object.keys(metadata).sort()).toEqual(['__proto__', 'a', 'constructor']);
    // biome-ignore lint/suspicious/noProto: a __proto__ key as plain data is what this test checks
    expect(metadata.__proto__).toBe('p');
    expect(metadata.constructor).toBe('c');
    // biome-ignore lint/suspicious/noProto: a __proto__ key as plain data is what this test checks
    expect(parseSafetensors(bytes).metadata.__proto__).toBe('p');
    const p = join(dir, 'meta-proto.safetensors');
    writeFileSync(p, bytes);
    // biome-ignore lint/suspicious/noProto: a __proto__ key as plain data is what this test checks
    expect((await loadSafetensors(p)).metadata.__proto__).toBe('p');
  });

  it('A3: Object.prototype member names are not dtypes', () => {
    for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf'])
      expectError(
        file(`{"w":{"dtype":"${dtype}","shape":[1],"data_offsets":[0,4]}}`, f32(1)),
        new RegExp(`tensor "w": unknown dtype "${dtype}" is not supported`),
      );
  });

  it('A4: duplicate keys are rejected, naming the key and where it is', () => {
    const t = (off: number) => `{"dtype":"F32","shape":[1],"data_offsets":[${off},${off + 4}]}`;
    const e = expectError(file(`{"w":${t(0)},"w":${t(0)}}`, f32(1)), /duplicate key "w" in the header/);
    expect(e.message).toMatch(/^safetensors x\.st: /);
    expectError(
      file(`{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, f32(1)),
      /duplicate key "dtype" in tensor "w"/,
    );
    expectError(file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"shape":[1]}}`, f32(1)), /duplicate key "shape" in tensor "w"/);
    expectError(file('{"__metadata__":{"a":"1","b":"2","a":"3"}}'), /duplicate key "a" in __metadata__/);
    expectError(file('{"__metadata__":{},"__metadata__":{}}'), /duplicate key "__metadata__" in the header/);
    // the same key spelled with an escape is the same key
    expectError(file(`{"ab":${t(0)},"a\\u0062":${t(0)}}`, f32(1)), /duplicate key "ab" in the header/);
    // inside an ignored extra field, too
    expectError(
      file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[{"k":1,"k":2}]}}`, f32(1)),
      /duplicate key "k" in tensor "w"/,
    );
    // escaped quotes and backslashes in keys and values do not confuse the scan
    const meta = { 'a\\': 'x"},{\\', 'a"': '\\', a: '""', 'b\\"': ':"{' };
    const metaText = JSON.stringify(meta);
    expect(decodeSafetensors(file(`{"__metadata__":${metaText}}`)).metadata).toEqual(meta);
    expectError(file(`{"__metadata__":${metaText.slice(0, -1)},"a\\u0022":"y"}}`), /duplicate key "a"" in __metadata__/);
    expectError(file(`{"__metadata__":${metaText.slice(0, -1)},"a\\\\":"y"}}`), /duplicate key "a\\" in __metadata__/);
    // the same key in different objects is fine, and so are strings in arrays and values equal to keys
    const ok = decodeSafetensors(
      file(
        `{"a":${t(0)},"b":${t(4)},"__metadata__":{"a":"a","dtype":"b"},"c":{"dtype":"F32","shape":[0],"data_offsets":[8,8],"x":["a","a"]}}`,
        f32(1, 2),
      ),
    );
    expect(Object.keys(ok.tensors).sort()).toEqual(['a', 'b', 'c']);
    for (const x of Object.values(ok.tensors)) x.dispose();
  });

  it('A5: deep nesting and huge values give a SafetensorsError with a short message', () => {
    const deep = (d: number) => `${'['.repeat(d)}${']'.repeat(d)}`;
    // serde_json (recursion limit 128) takes 127 levels: the top object + 126 parse, + 127 do not
    const at126 = errorOf(file(`{"w":${deep(126)}}`));
    expect(at126).toBeInstanceOf(SafetensorsError);
    expect((at126 as Error).message).toMatch(/tensor "w": expected an object/);
    for (const d of [127, 5000, 200_000]) {
      const e = expectError(file(`{"w":${deep(d)}}`), /header JSON is nested deeper than 127 levels/);
      expect(e.message.length).toBeLessThan(200);
    }
    const objs = (d: number) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
    expectError(file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${objs(5000)}}}`, f32(1)), /nested deeper than 127/);
    expectError(file(`{"__metadata__":${objs(5000)}}`), /nested deeper than 127/);
    // below the limit, bad values are shown cut to a bounded size and depth
    const e100 = expectError(
      file(`{"w":[${objs(100)}]}`),
      /tensor "w": expected an object \{dtype, shape, data_offsets\}, got \[\{"a":\{"a":/,
    );
    expect(e100.message.length).toBeLessThan(400);

    const big = 'x'.repeat(20_000_000);
    const name = 'n'.repeat(1_000_000);
    for (const [header, re] of [
      [`{"w":"${big}"}`, /tensor "w": expected an object/],
      [`{"w":{"dtype":"${big}","shape":[1],"data_offsets":[0,4]}}`, /unknown dtype "xxxx/],
      [
        `{"w":{"dtype":"F32","shape":[${'1,'.repeat(500_000)}1],"data_offsets":[0,8]}}`,
        /shape \[1,1,1.*needs 4 bytes but data_offsets \[0, 8\] span 8/,
      ],
      [`{"__metadata__":{"k":[${'0,'.repeat(500_000)}0]}}`, /__metadata__\["k"\] must be a string, got object \[0,0,/],
      [
        `{"${name}":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`,
        /tensor "nnnn.*…\(1000000 chars\)": shape \[1\] x F32 needs 4 bytes/,
      ],
      [`{"${name}":1,"${name}":1}`, /duplicate key "nnn.*…\(1000000 chars\)" in the header/],
    ] as [string, RegExp][]) {
      const e = errorOf(file(header, f32(1)));
      expect(e).toBeInstanceOf(SafetensorsError);
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message.length).toBeLessThan(1000);
    }
  });

  it('A5: showValue is bounded, depth-limited and never throws', () => {
    expect(showValue({ a: [1, 'x', null, true], b: {} })).toBe(JSON.stringify({ a: [1, 'x', null, true], b: {} }));
    expect(showValue(undefined)).toBe('undefined');
    expect(showValue([8, 0])).toBe('[8,0]');
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(showValue(deep)).toBe('[[[[[[[[[…]]]]]]]]]');
    const wide = Array.from({ length: 1_000_000 }, (_, i) => i);
    expect(showValue(wide).length).toBeLessThanOrEqual(201);
    expect(showValue('y'.repeat(1e7)).length).toBeLessThanOrEqual(201);
    const proto = JSON.parse('{"__proto__":1}');
    expect(showValue(proto)).toBe('{"__proto__":1}');
  });

  it('A6: "__metadata__": null means no metadata', async () => {
    const bytes = file('{"__metadata__":null,"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(7));
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(Object.keys(metadata)).toEqual([]);
    expect(Array.from(tensors.w!.dataSync())).toEqual([7]);
    tensors.w!.dispose();
    const p = join(dir, 'meta-null.safetensors');
    writeFileSync(p, bytes);
    expect(Object.keys((await readSafetensorsHeader(p)).metadata)).toEqual([]);
    // other non-objects are still rejected
    expectError(file('{"__metadata__":"x"}'), /__metadata__ must be an object of strings, got "x"/);
    expectError(file('{"__metadata__":[]}'), /__metadata__ must be an object of strings, got \[\]/);
  });

  it('the writer lists integer-like names in data order (a JS object would put "9" before "10")', () => {
    const one = (v: number): HostTensor => ({ dtype: 'F32', shape: [1], data: Float32Array.of(v) });
    const bytes = encodeSafetensorsHost({ '9': one(9), '10': one(10), a: one(1) });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd();
    expect(text).toBe(
      '{"10":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"9":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},' +
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
    );
    expect(parseSafetensors(bytes).entries.map((e) => [e.name, e.data[0]])).toEqual([
      ['10', 10],
      ['9', 9],
      ['a', 1],
    ]);
  });
});
