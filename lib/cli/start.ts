/**
 * What the installed command runs (built as dist/lib/cli/ucvmfs.cjs by scripts/bundle-cli.mjs): the CLI's
 * one-file build beside it, through V8's code cache (./code-cache.ts).
 * @module
 */
import { readFileSync } from 'node:fs';
import { isAscii } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runWithCodeCache } from './code-cache.js';

/** The build's content hash, written in by scripts/bundle-cli.mjs. */
declare const UCVMFS_BUILD_ID: string;

const file = join(dirname(fileURLToPath(import.meta.url)), 'ucvmfs-cli.cjs');
const bytes = readFileSync(file);
// The build is ASCII (esbuild escapes the rest): decoded as Latin-1 it makes the same string at half the cost.
// The first line (`#!`) is blanked, as Node's loader does, keeping the line numbers.
const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8').replace(/^#!.*/, '');
runWithCodeCache(file, source, UCVMFS_BUILD_ID);
