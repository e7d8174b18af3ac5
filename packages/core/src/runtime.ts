/**
 * Runtime helpers that work in Node and in a browser alike (no `node:` import, no `process` read
 * at module level): environment variables, random tags, host byte order, UTF-8 order.
 */

/** An environment variable in Node (`process.env[name]`); undefined in a browser. Read at call time. */
export function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

/** `bytes` random bytes as lowercase hex (Web Crypto: Node >= 19 and every browser). */
export function randomHex(bytes: number): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Whether this host stores multi-byte numbers little-endian (safetensors' byte order). */
export function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

const utf8 = new TextEncoder();

/** Byte-wise comparison of the UTF-8 encodings (Rust's `String` order). */
export function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}
