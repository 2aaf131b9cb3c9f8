// Builds the installed command's two files, which bin/ucvmfs.js runs:
// - dist/lib/cli/ucvmfs-cli.cjs: the CLI and every module it may load in one CommonJS file. Node resolves, links
//   and evaluates 60-odd ES modules one by one at every start (about 30-50 ms of a command that takes 150); one
//   script compiles lazily and links nothing. Dynamic imports stay lazy (esbuild turns them into calls that
//   evaluate the module on first use).
// - dist/lib/cli/ucvmfs.cjs (lib/cli/start.ts), written last: runs the first through V8's code cache
//   (lib/cli/code-cache.ts), which spares compiling it again.
// Run by `npm run build` after tsc.
//
// The files sit beside dist/lib/cli/main.js so that paths computed from `import.meta.url` (the native addon and
// the preload library, three levels up) resolve to the same place as from the ES modules; sql.js is left out and
// loaded from node_modules as before (its WASM file is found beside its script).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['sql.js'],
  // Whitespace and syntax only: names stay, so that stack traces still say where.
  minifyWhitespace: true,
  minifySyntax: true,
  define: { 'import.meta.url': '__ucvmfs_module_url' },
  // "use strict" first: a directive only counts before any statement, and the ES modules were strict.
  banner: { js: "'use strict';\nvar __ucvmfs_module_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};
const cli = join(root, 'dist/lib/cli/ucvmfs-cli.cjs');
await build({ ...common, entryPoints: [join(root, 'dist/lib/cli/main.js')], outfile: cli });
// The starter names its cache files by the build's content: V8 itself only compares the source's length.
const id = createHash('sha256').update(readFileSync(cli)).digest('hex').slice(0, 16);
await build({ ...common, entryPoints: [join(root, 'dist/lib/cli/start.js')], outfile: join(root, 'dist/lib/cli/ucvmfs.cjs'), define: { ...common.define, UCVMFS_BUILD_ID: JSON.stringify(id) } });
