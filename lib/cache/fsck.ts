/**
 * Checks a cache directory: every object against the digest logged when it was verified and kept, leftover
 * temporary files of processes that are gone. With `repair`, bad objects move to `quarantaine/` (the genuine
 * client's name for it) and dead temporaries are removed, so the next read fetches the object again. The raw
 * objects of a cache shared with other users (`data/`) are checked by their names, and bad ones removed.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DIGEST_LOG } from './disk-cache.js';
import { deadLock, pidAlive } from './claim.js';
import { createHasher, parseHash } from '../format/hash.js';

/** What fsck found. */
export interface FsckReport {
  /** Objects whose content matches their logged digest. */
  good: number;
  /** Objects whose content does not (names like `ab/cdef…`); quarantined with `repair`. */
  bad: string[];
  /** Objects with no logged digest (e.g. written by the genuine client): present, not checkable here. */
  unverified: number;
  /** Temporary files and download locks of dead processes (removed with `repair`). */
  staleTemps: number;
}


/**
 * A shared mirror's raw objects (`data/xx/…`, see shared-mirror.ts) are checked by their names alone: the name
 * is the hash of the bytes as stored.
 */
async function checkMirror(dir: string, report: FsckReport, options: { repair?: boolean; onProgress?: (checked: number) => void }): Promise<void> {
  const data = join(dir, 'data');
  for (const sub of (await readdir(data).catch(() => [] as string[])).filter((d) => /^[0-9a-f]{2}$/.test(d)).sort()) {
    for (const name of await readdir(join(data, sub))) {
      const m = /^([0-9a-f]{38})(?:-(rmd160|shake128))?[A-Z]?$/.exec(name);
      if (!m) continue;
      const want = parseHash(`${sub}${m[1]}${m[2] ? `-${m[2]}` : ''}`);
      const hasher = createHasher(want.algorithm);
      await pipeline(createReadStream(join(data, sub, name)), async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) hasher.update(c);
      });
      if (hasher.digest().hex === want.hex) {
        report.good++;
      } else {
        report.bad.push(`data/${sub}/${name}`);
        // Removed, not moved: other users control the paths of a shared mirror (see shared-mirror.ts).
        if (options.repair) await rm(join(data, sub, name), { force: true });
      }
      options.onProgress?.(report.good + report.bad.length);
    }
  }
}

async function sha1Of(path: string): Promise<string> {
  const h = createHash('sha1');
  await pipeline(createReadStream(path), async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) h.update(c);
  });
  return h.digest('hex');
}

/** Checks (and with `repair` fixes) the cache directory `dir` (the one holding `xx/` object directories). */
export async function fsckCache(dir: string, options: { repair?: boolean; onProgress?: (checked: number) => void } = {}): Promise<FsckReport> {
  const report: FsckReport = { good: 0, bad: [], unverified: 0, staleTemps: 0 };
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) return report; // nothing cached there yet
  const digests = new Map<string, string>();
  const log = await readFile(join(dir, DIGEST_LOG), 'latin1').catch(() => '');
  for (const line of log.split('\n')) {
    const m = /^(\S+) ([0-9a-f]{40})$/.exec(line);
    if (m) digests.set(m[1]!, m[2]!);
  }
  const kept: string[] = [];
  for (const sub of (await readdir(dir)).filter((d) => /^[0-9a-f]{2}$/.test(d)).sort()) {
    for (const name of await readdir(join(dir, sub))) {
      const full = sub + name;
      const want = digests.get(full);
      if (!want) {
        report.unverified++;
        continue;
      }
      if ((await sha1Of(join(dir, sub, name))) === want) {
        report.good++;
        kept.push(`${full} ${want}`);
      } else {
        report.bad.push(`${sub}/${name}`);
        if (options.repair) {
          await mkdir(join(dir, 'quarantaine'), { recursive: true });
          await rename(join(dir, sub, name), join(dir, 'quarantaine', full));
        }
      }
      options.onProgress?.(report.good + report.bad.length);
    }
  }
  await checkMirror(dir, report, options);
  for (const t of await readdir(join(dir, 'txn')).catch(() => [] as string[])) {
    // `<pid>.<random>` here, `<object>.<pid>.<random>` in a shared mirror's txn/.
    const pid = Number(t.split('.').find((x) => /^\d+$/.test(x)));
    // A claim's lock, or the guard of a takeover of one (claim.ts), whose holder is gone.
    if (t.endsWith('.lock') || t.endsWith('.lock.takeover')) {
      // Removed only if still the one judged: a waiter may have just made a new one of that name.
      if (deadLock(join(dir, 'txn', t), !!options.repair)) report.staleTemps++;
    } else if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) {
      report.staleTemps++;
      if (options.repair) await rm(join(dir, 'txn', t), { force: true });
    }
  }
  // Compact the log to the objects still here (written aside and renamed: a crash keeps the old log).
  if (options.repair) {
    const tmp = join(dir, `${DIGEST_LOG}.${process.pid}.tmp`);
    await writeFile(tmp, kept.map((l) => l + '\n').join(''));
    await rename(tmp, join(dir, DIGEST_LOG));
  }
  return report;
}
