/**
 * What the installed command runs (built as dist/lib/cli/ucvmfs.cjs by scripts/bundle-cli.mjs): the CLI's
 * one-file build beside it, through V8's code cache (./code-cache.ts).
 * @module
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runWithCodeCache } from './code-cache.js';

runWithCodeCache(join(dirname(fileURLToPath(import.meta.url)), 'ucvmfs-cli.cjs'));
