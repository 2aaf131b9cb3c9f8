/**
 * Checks a cache directory: every object against the digest logged when it was verified and kept, leftover
 * temporary files of processes that are gone. With `repair`, bad objects move to `quarantaine/` (the genuine
 * client's name for it) and dead temporaries are removed, so the next read fetches the object again.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DIGEST_LOG, lockStale, pidAlive } from './disk-cache.js';

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


async function sha1Of(path: string): Promise<string> {
  const h = createHash('sha1');
  await pipeline(createReadStream(path), async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) h.update(c);
  });
  return h.digest('hex');
}

/** Checks (and with `repair` fixes) the cache directory `dir` (the one holding `xx/` object directories). */
export async function fsckCache(dir: string, options: { repair?: boolean; onProgress?: (checked: number) => void } = {}): Promise<FsckReport> {
  const digests = new Map<string, string>();
  const log = await readFile(join(dir, DIGEST_LOG), 'latin1').catch(() => '');
  for (const line of log.split('\n')) {
    const m = /^(\S+) ([0-9a-f]{40})$/.exec(line);
    if (m) digests.set(m[1]!, m[2]!);
  }
  const report: FsckReport = { good: 0, bad: [], unverified: 0, staleTemps: 0 };
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
  for (const t of await readdir(join(dir, 'txn')).catch(() => [] as string[])) {
    const pid = Number(t.split('.')[0]);
    const lockAge = t.endsWith('.lock') ? await stat(join(dir, 'txn', t)).then((x) => Date.now() - x.mtimeMs, () => 0) : 0;
    const deadLock = t.endsWith('.lock') && lockStale(await readFile(join(dir, 'txn', t), 'latin1').catch(() => ''), lockAge);
    if (deadLock || (Number.isInteger(pid) && pid > 0 && !pidAlive(pid))) {
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
