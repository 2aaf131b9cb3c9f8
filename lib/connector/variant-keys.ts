/**
 * Variant symlinks (`$(VAR)` in a target) expand with each job's variables, and a shadow tree holds one expansion
 * of each link. So once a repository's variant links have been seen, its trees are kept apart by the values of
 * the variables they use: jobs with the same values share a tree, jobs with other values get their own. The
 * names of those variables are recorded per repository in the shadow area (`variables/<fqrn>`, append-only).
 * @module
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { smallDigest } from '../crypto/small-hash.js';

const NAME = /^[A-Za-z0-9_]+$/;

/** The variables a repository's variant links use, and the key they give a job's tree. */
export class VariantKeys {
  /** Per repository, the names recorded when this job mounted it: its tree is keyed by these. */
  private readonly keyed = new Map<string, ReadonlySet<string>>();
  private readonly recorded = new Set<string>();

  constructor(private readonly base: string) {}

  private file(fqrn: string): string {
    return posix.join(this.base, 'variables', fqrn);
  }

  /**
   * What the tree's name gets after the revision: '' while no variant link of the repository was ever made, else
   * `+` and a digest of the recorded variables' values for this job (an empty value counts as unset, as the
   * expansion takes it).
   */
  suffix(fqrn: string, value: (name: string) => string | undefined): string {
    let names: string[] = [];
    try {
      names = [...new Set(readFileSync(this.file(fqrn), 'utf8').split('\n').filter((n) => NAME.test(n)))].sort();
    } catch {
      // none recorded
    }
    this.keyed.set(fqrn, new Set(names));
    if (names.length === 0) return '';
    const text = names.map((n) => (value(n) ? `${n}=${value(n)}` : n)).join('\n');
    return `+${smallDigest('sha1', Buffer.from(text)).toString('hex').slice(0, 16)}`;
  }

  /**
   * A variant link was made from `raw`: the variables it uses that this job's tree is not keyed by are recorded,
   * so that later jobs with other values of them get another tree. (Two first jobs with different values at
   * once still share one: see the README.)
   */
  made(fqrn: string, raw: string): void {
    const keyed = this.keyed.get(fqrn);
    const fresh = [...raw.matchAll(/\$\(([A-Za-z0-9_]+)/g)].map((m) => m[1]!)
      .filter((n) => !keyed?.has(n) && !this.recorded.has(`${fqrn}\0${n}`));
    if (fresh.length === 0) return;
    mkdirSync(posix.dirname(this.file(fqrn)), { recursive: true, mode: 0o711 });
    appendFileSync(this.file(fqrn), fresh.map((n) => `${n}\n`).join(''), { mode: 0o600 });
    for (const n of fresh) this.recorded.add(`${fqrn}\0${n}`);
  }
}
