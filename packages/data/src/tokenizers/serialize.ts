/**
 * Save and load any mmlm tokenizer as versioned JSON (`{ type, version, ... }`), with errors that
 * name the file and the field at fault.
 */
import { fs, nodeOnly } from '#platform';
import { BpeTokenizer } from './bpe.js';
import { ByteTokenizer } from './byte.js';
import { CharTokenizer } from './char.js';
import type { Tokenizer } from './special.js';
import { WordTokenizer } from './word.js';

function stringArray(who: string, o: Record<string, unknown>, field: string): string[] {
  const v = o[field];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new Error(`${who}: "${field}" must be an array of strings, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v as string[];
}

/** Rebuilds a tokenizer from its `toJSON()` form; `source` (e.g. a path) is named in errors. */
export function tokenizerFromJSON(json: unknown, source = 'JSON'): Tokenizer {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(
      `tokenizer ${source}: expected an object with "type" and "version", got ${Array.isArray(json) ? 'an array' : String(json)}`,
    );
  const o = json as Record<string, unknown>;
  const type = o.type;
  if (type === 'mmlm-bpe') return BpeTokenizer.fromJSON(o, source);
  const who = `tokenizer ${source}`;
  if (type !== 'mmlm-byte' && type !== 'mmlm-char' && type !== 'mmlm-word')
    throw new Error(`${who}: expected type "mmlm-byte", "mmlm-char", "mmlm-word" or "mmlm-bpe", got ${JSON.stringify(type)}`);
  if (o.version !== 1) throw new Error(`${who}: unsupported version ${JSON.stringify(o.version)}; this build reads version 1`);
  const specialTokens = stringArray(who, o, 'specialTokens');
  try {
    if (type === 'mmlm-byte') return new ByteTokenizer({ specialTokens });
    if (type === 'mmlm-char') return new CharTokenizer(stringArray(who, o, 'chars'), { specialTokens });
    return new WordTokenizer(stringArray(who, o, 'words'), { specialTokens });
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(who) ? msg : `${who}: ${msg}`);
  }
}

/** Writes `tok.toJSON()` to `path` (pretty-printed, UTF-8). Node only (in a browser, keep `JSON.stringify(tok.toJSON())`). */
export function saveTokenizer(path: string, tok: Tokenizer): void {
  nodeOnly('saveTokenizer');
  fs.writeFileSync(path, `${JSON.stringify(tok.toJSON(), null, 1)}\n`, 'utf8');
}

/** Reads a tokenizer written by `saveTokenizer`. Node only (in a browser, `tokenizerFromJSON` the parsed JSON). */
export function loadTokenizer(path: string): Tokenizer {
  nodeOnly('loadTokenizer');
  let st: ReturnType<typeof fs.statSync>;
  try {
    st = fs.statSync(path);
  } catch {
    throw new Error(`loadTokenizer: ${path}: file not found`);
  }
  if (!st.isFile()) throw new Error(`loadTokenizer: ${path}: not a regular file`);
  const text = fs.readFileSync(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`loadTokenizer: ${path}: invalid JSON (${(e as Error).message})`);
  }
  return tokenizerFromJSON(json, path);
}
