/**
 * Serves dist/ on http://localhost:8080 (or the port given): `pnpm --filter @mmlm/web serve [port]`.
 * Sends the WebAssembly MIME type (needed for streaming wasm compilation) and nothing else fancy.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
};

/** A static file server over `root`; resolves with the server once it listens on `port` (0: any free port). */
export function serve(root, port = 0, host = '127.0.0.1') {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  if (!existsSync(join(root, 'index.html'))) {
    console.error('apps/web/dist has no index.html: run `pnpm --filter @mmlm/web build` first');
    process.exit(1);
  }
  const server = await serve(root, Number(process.argv[2] ?? 8080));
  console.log(`mmlm lab page: http://localhost:${server.address().port}/`);
}
