/**
 * Variant symlinks (`$(VAR)` in a target) expand with each job's variables, and a shadow tree holds one expansion
 * of each link. So once a repository's variant links have been seen, its trees are kept apart by the values of
 * the variables they use: jobs with the same values share a tree, jobs with other values get their own. The
 * names of those variables are recorded per repository in the shadow area (`variables/<fqrn>`, append-only), and
 * the job that records a name also says which tree holds the values it used (`variables/<stem>`: the tree's
 * name), so that the next job with those values goes on in that tree instead of starting a new one.
 * @module
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { smallDigest } from '../crypto/small-hash.js';

const NAME = /^[A-Za-z0-9_]+$/;

interface Mounted {
  /** `<fqrn>@<root hash>`: the revision, before any key. */
  readonly revision: string;
  /** The tree this job uses. */
  readonly stem: string;
  /** The names its key covers. */
  readonly names: ReadonlySet<string>;
  readonly value: (name: string) => string | undefined;
}

/** The variables a repository's variant links use, and the trees they key. */
export class VariantKeys {
  private readonly mounted = new Map<string, Mounted>();

  constructor(private readonly base: string) {}

  private file(name: string): string {
    return posix.join(this.base, 'variables', name);
  }

  private read(name: string): string | undefined {
    try {
      return readFileSync(this.file(name), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** The recorded names of a repository's variant variables, sorted. */
  private names(fqrn: string): string[] {
    return [...new Set((this.read(fqrn) ?? '').split('\n').filter((n) => NAME.test(n)))].sort();
  }

  /** `+` and a digest of the names' values (an empty value counts as unset, as the expansion takes it); '' for none. */
  private static key(names: readonly string[], value: (name: string) => string | undefined): string {
    if (names.length === 0) return '';
    const text = names.map((n) => (value(n) ? `${n}=${value(n)}` : n)).join('\n');
    return `+${smallDigest('sha1', Buffer.from(text)).toString('hex').slice(0, 16)}`;
  }

  /**
   * The tree a job uses for `revision` (`<fqrn>@<root hash>`): the revision while no variant link of the
   * repository was ever made, else the revision keyed by this job's values, or the tree a job with the same
   * values recorded for that key.
   */
  stemFor(fqrn: string, revision: string, value: (name: string) => string | undefined): string {
    const names = this.names(fqrn);
    const keyed = revision + VariantKeys.key(names, value);
    const held = this.read(keyed)?.trim();
    const stem = held && (held === revision || held.startsWith(`${revision}+`)) ? held : keyed;
    this.mounted.set(fqrn, { revision, stem, names: new Set(names), value });
    return stem;
  }

  /**
   * A variant link was made from `raw`: the variables it uses that this job's tree is not keyed by are recorded,
   * and the key of this job's values is said to be this tree. (Two first jobs with different values at once
   * still share one: see the README.)
   */
  made(fqrn: string, raw: string): void {
    const m = this.mounted.get(fqrn);
    if (!m) return;
    const fresh = [...raw.matchAll(/\$\(([A-Za-z0-9_]+)/g)].map((x) => x[1]!).filter((n) => !m.names.has(n));
    if (fresh.length === 0) return;
    const names = new Set([...m.names, ...fresh]);
    this.mounted.set(fqrn, { ...m, names });
    // A record that cannot be written (a full disk) costs later jobs only the sharing of trees, never a listing.
    try {
      mkdirSync(posix.dirname(this.file(fqrn)), { recursive: true, mode: 0o711 });
      appendFileSync(this.file(fqrn), fresh.map((n) => `${n}\n`).join(''), { mode: 0o600 });
      const keyed = m.revision + VariantKeys.key([...names].sort(), m.value);
      const tmp = `${this.file(keyed)}.${process.pid}.tmp`;
      writeFileSync(tmp, `${m.stem}\n`, { mode: 0o600 });
      renameSync(tmp, this.file(keyed));
    } catch {
      // see above
    }
  }
}
