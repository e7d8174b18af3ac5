/**
 * Reader for local UTF-8 text files (corpora such as tinyshakespeare). Decoding is strict (WHATWG
 * TextDecoder with `fatal: true`); a leading byte-order mark is dropped. Node only: in a browser,
 * decode the bytes of a fetch() or File with TextDecoder.
 */
import { fs, nodeOnly } from '#platform';
import { firstInvalidUtf8 } from '../tokenizers/utf8.js';

const strict = new TextDecoder('utf-8', { fatal: true });

/** The text of the UTF-8 file at `path`; throws naming the file for missing, directory, empty or non-UTF-8 files. */
export function readTextFile(path: string): string {
  nodeOnly('readTextFile');
  if (typeof path !== 'string' || path.length === 0)
    throw new Error(`readTextFile: path must be a non-empty string, got ${JSON.stringify(path)}`);
  let st: ReturnType<typeof fs.statSync>;
  try {
    st = fs.statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`readTextFile: ${path}: file not found`);
    if (code === 'EACCES') throw new Error(`readTextFile: ${path}: permission denied`);
    throw new Error(`readTextFile: ${path}: cannot stat (${(e as Error).message})`);
  }
  if (st.isDirectory()) throw new Error(`readTextFile: ${path}: is a directory, expected a text file`);
  if (!st.isFile()) throw new Error(`readTextFile: ${path}: not a regular file`);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new Error(`readTextFile: ${path}: cannot read (${(e as Error).message})`);
  }
  if (bytes.length === 0) throw new Error(`readTextFile: ${path}: file is empty (0 bytes), expected UTF-8 text`);
  try {
    return strict.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const b = bytes[at] ?? 0;
    throw new Error(
      `readTextFile: ${path}: not valid UTF-8: invalid byte sequence at offset ${at} (byte 0x${b.toString(16).padStart(2, '0')})`,
    );
  }
}
