/**
 * Errors of the file decoders. Every failure caused by the input (a corrupt, truncated,
 * unsupported or too-large file, or a file that cannot be read) is thrown as the format's own
 * class, so callers can catch one type per format (`PngError`, `WavError`, `IdxError`) or all of
 * them (`DecodeError`); nothing from inside wavefile or zlib escapes as a raw
 * RangeError/TypeError. Bad arguments (an unknown `channels` mode, a negative limit) are
 * programming errors and stay plain `Error`s.
 *
 * The message is `<format> <source>: <reason>`, e.g. `PNG a.png: IDAT holds 8 bytes of pixel data,
 * expected 16 (truncated image?)`.
 */

export type DecodeFormat = 'PNG' | 'WAV' | 'IDX';

/**
 * - 'corrupt': the bytes contradict the format (bad checksum, truncation, inconsistent sizes);
 * - 'unsupported': a valid file this reader does not handle (e.g. RF64, 12-bit PCM);
 * - 'limit': the file is larger than a size limit option (`maxPixels`, `maxBytes`, `maxSamples`);
 * - 'io': the file cannot be read.
 */
export type DecodeErrorKind = 'corrupt' | 'unsupported' | 'limit' | 'io';

export class DecodeError extends Error {
  /** Which decoder failed. */
  readonly format: DecodeFormat;
  /** The file path or the `name` given to the decode function ('<buffer>' by default). */
  readonly source: string;
  /** What was wrong, without the `<format> <source>: ` prefix. */
  readonly reason: string;
  readonly kind: DecodeErrorKind;

  constructor(format: DecodeFormat, source: string, reason: string, kind: DecodeErrorKind = 'corrupt', options?: { cause?: unknown }) {
    super(`${format} ${source}: ${reason}`, options);
    this.name = 'DecodeError';
    this.format = format;
    this.source = source;
    this.reason = reason;
    this.kind = kind;
  }
}

/** A PNG file that cannot be decoded (see `DecodeError`). */
export class PngError extends DecodeError {
  constructor(source: string, reason: string, kind: DecodeErrorKind = 'corrupt', options?: { cause?: unknown }) {
    super('PNG', source, reason, kind, options);
    this.name = 'PngError';
  }
}

/** A WAV file that cannot be decoded (see `DecodeError`). */
export class WavError extends DecodeError {
  constructor(source: string, reason: string, kind: DecodeErrorKind = 'corrupt', options?: { cause?: unknown }) {
    super('WAV', source, reason, kind, options);
    this.name = 'WavError';
  }
}

/** An IDX (MNIST) file that cannot be decoded (see `DecodeError`). */
export class IdxError extends DecodeError {
  constructor(source: string, reason: string, kind: DecodeErrorKind = 'corrupt', options?: { cause?: unknown }) {
    super('IDX', source, reason, kind, options);
    this.name = 'IdxError';
  }
}

/** Checks a size-limit option: a positive integer or Infinity (no limit); plain Error otherwise. */
export function checkLimitOption(what: string, option: string, value: number): number {
  if (!(value === Number.POSITIVE_INFINITY || (Number.isSafeInteger(value) && value >= 1)))
    throw new Error(`${what}: ${option} must be a positive integer or Infinity, got ${JSON.stringify(value)}`);
  return value;
}

/** The message of a caught value (errors thrown by libraries are not always Errors). */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
