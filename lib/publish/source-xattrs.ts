/**
 * Reads `user.*` extended attributes of a source tree. Node has no xattr API, so this asks `getfattr` (Debian
 * package attr) for the whole tree in one run; without the program a tree simply has no xattrs.
 * @module
 */
import { spawn } from 'node:child_process';
import { isUtf8 } from 'node:buffer';
import { sep } from 'node:path';
import { decodeName } from '../format/byte-names.js';

/** Extended attributes by path relative to the source root (`''` for the root, else `a/b`). */
export type XattrsByPath = Map<string, Map<string, Buffer>>;

/** Undoes getfattr's quoting of names: `\ooo` octal escapes for unprintable bytes and the backslash. */
function unescapeOctal(s: string): Buffer {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.toString('latin1', i + 1, i + 4))) {
      bytes.push(parseInt(raw.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(c);
  }
  return Buffer.from(bytes);
}

/** Parses the output of `getfattr -R -d -e hex --absolute-names`. */
export function parseGetfattrOutput(output: Buffer, root: string): XattrsByPath {
  const result: XattrsByPath = new Map();
  const prefix = root.endsWith(sep) ? root : root + sep;
  let current: Map<string, Buffer> | undefined;
  for (const line of output.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = decodeName(unescapeOctal(line.slice(8)));
      const rel = abs === root ? '' : abs.startsWith(prefix) ? abs.slice(prefix.length) : undefined;
      if (rel === undefined) current = undefined;
      else {
        current = result.get(rel) ?? new Map();
        result.set(rel, current);
      }
      continue;
    }
    if (!current || line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = unescapeOctal(eq < 0 ? line : line.slice(0, eq)).toString('utf8');
    const value = eq < 0 ? '' : line.slice(eq + 1);
    if (!name.startsWith('user.')) continue;
    let bytes: Buffer;
    if (value.startsWith('0x')) bytes = Buffer.from(value.slice(2), 'hex');
    else if (value.startsWith('0s')) bytes = Buffer.from(value.slice(2), 'base64');
    else if (value.startsWith('"') && value.endsWith('"')) bytes = unescapeOctal(value.slice(1, -1));
    else bytes = Buffer.from(value, 'latin1');
    current.set(name, bytes);
  }
  for (const [k, v] of result) if (v.size === 0) result.delete(k);
  return result;
}

/** Runs getfattr over the tree below `root` (absolute); resolves to an empty map when getfattr is not installed. */
export function readTreeXattrs(root: string): Promise<XattrsByPath> {
  // -R: recursively; -P: do not follow symlinked directories.
  return getfattr(['-R', '-P'], [root], root);
}

/** Arguments of one getfattr run over listed paths, at most (a quarter of the kernel's usual limit, 2 MiB). */
const ARG_BYTES = 512 * 1024;

/**
 * Runs getfattr over the listed entries of the tree below `root` only, not into directories (a publish that left
 * subtrees unscanned); the whole tree when a path cannot be an argument (a name that is not UTF-8).
 */
export async function readEntriesXattrs(root: string, paths: readonly Buffer[]): Promise<XattrsByPath> {
  if (!paths.every((p) => isUtf8(p))) return readTreeXattrs(root);
  const batches: string[][] = [];
  for (let at = 0; at < paths.length;) {
    const batch: string[] = [];
    for (let bytes = 0; at < paths.length && (batch.length === 0 || bytes + paths[at]!.length < ARG_BYTES); at++) {
      batch.push(paths[at]!.toString('utf8'));
      bytes += paths[at]!.length + 1;
    }
    batches.push(batch);
  }
  // Two at a time: getfattr waits on the file system about as much as it works.
  const all: XattrsByPath = new Map();
  for (let i = 0; i < batches.length; i += 2) {
    for (const found of await Promise.all(batches.slice(i, i + 2).map((b) => getfattrSplitting(b, root)))) for (const [k, v] of found) all.set(k, v);
  }
  return all;
}

/** getfattr over `paths`, in halves while the kernel finds the arguments too long (a small stack limit lowers it). */
async function getfattrSplitting(paths: string[], root: string): Promise<XattrsByPath> {
  try {
    return await getfattr([], paths, root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'E2BIG' || paths.length < 2) throw e;
    const half = paths.length >> 1;
    const [a, b] = await Promise.all([getfattrSplitting(paths.slice(0, half), root), getfattrSplitting(paths.slice(half), root)]);
    for (const [k, v] of b) a.set(k, v);
    return a;
  }
}

function getfattr(flags: string[], paths: string[], root: string): Promise<XattrsByPath> {
  return new Promise((resolve, reject) => {
    // -h: a symlink's own attributes; `--`: a path is never an option.
    const child = spawn('getfattr', [...flags, '-h', '-d', '-m', '^user\\.', '-e', 'hex', '--absolute-names', '--', ...paths], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    let failed = false;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      failed = true;
      if (e.code === 'ENOENT') resolve(new Map());
      else reject(e);
    });
    child.on('close', () => {
      // A non-zero exit only means some file could not be read; what was printed is still right.
      if (!failed) resolve(parseGetfattrOutput(Buffer.concat(out), root));
    });
  });
}
