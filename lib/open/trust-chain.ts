/**
 * Opening a repository, step 3: the trust chain. Whitelist (signed by a master key), certificate (listed in the
 * whitelist), manifest (signed by the certificate); a revision lower than one this cache trusted is refused,
 * and the verified files are kept as the cache's last trusted state. At open a cached chain younger than its
 * TTL is taken instead of fetched (checked again in full unless the cache's memo vouches for it, see
 * ./verified-memo.ts), and processes started together fetch it once.
 * @module
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CvmfsError, ioError } from '../errors.js';
import { hashToString } from '../format/hash.js';
import { parseManifest, type Manifest } from '../format/manifest.js';
import type { Whitelist } from '../format/whitelist.js';
import type { RsaPublicKey } from '../crypto/rsa.js';
import type { Fetcher } from '../net/fetcher.js';
import type { DiskCache } from '../cache/disk-cache.js';
import type { ObjectStore } from '../store/object-store.js';
import { inForce, namesRepository, verifyCertificate, verifyManifest, verifyWhitelist } from '../trust.js';
import { parseWhitelist } from '../format/whitelist.js';
import { keysIdentity, memoName, memoOf, memoVouches } from './verified-memo.js';
import { debug } from '../debug.js';

/** A verified whitelist and manifest. */
export interface Verified {
  whitelist: Whitelist;
  manifest: Manifest;
}

/** Whitelist and manifest are small; anything larger is not one. */
const MAX_SIGNED_FILE = 1 << 20;

async function bodyToBuffer(body: Readable, url: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > MAX_SIGNED_FILE) throw ioError('download', `${url} is larger than ${MAX_SIGNED_FILE} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** The trust chain of one repository, fetched through its fetcher and kept in its cache. */
export class TrustChain {
  /** Whether the next manifest fetched starts its root catalog's download (HEAD is wanted). */
  prefetchRoot: boolean;
  /** The master keys as the cache's memo of a verified chain names them (./verified-memo.ts). */
  private readonly keysId: string;

  constructor(
    private readonly fqrn: string,
    private readonly keys: readonly RsaPublicKey[],
    private readonly fetcher: Fetcher,
    private readonly store: ObjectStore,
    private readonly cache: DiskCache,
    private readonly now: () => Date,
    prefetchRoot: boolean,
  ) {
    this.prefetchRoot = prefetchRoot;
    this.keysId = keysIdentity(keys);
  }

  /** Verifies a whitelist and a manifest (fetching the certificate the manifest names). */
  private async verify(wlRaw: Buffer, mRaw: Buffer): Promise<Verified> {
    const whitelist = verifyWhitelist(wlRaw, this.fqrn, this.keys, this.now());
    const manifest = parseManifest(mRaw);
    const cert = verifyCertificate(await this.store.getBytes(manifest.certificate, 'X'), whitelist, this.fqrn);
    return { whitelist, manifest: verifyManifest(manifest, this.fqrn, cert) };
  }

  /**
   * A cached whitelist and manifest: taken on the cache's memo when it vouches for these very bytes under these
   * keys (the expiry and the names still checked), else verified in full and the memo written.
   */
  private async verifyCached(wlRaw: Buffer, mRaw: Buffer, memo: Buffer | undefined): Promise<Verified> {
    if (memoVouches(memo, this.keysId, wlRaw, mRaw)) {
      return { whitelist: inForce(parseWhitelist(wlRaw, true), this.fqrn, this.now()), manifest: namesRepository(parseManifest(mRaw, true), this.fqrn) };
    }
    const v = await this.verify(wlRaw, mRaw);
    await this.writeMemo(wlRaw, mRaw);
    return v;
  }

  /** Best effort, not synced: without the memo, or with a torn one, the next command checks the chain in full. */
  private async writeMemo(wlRaw: Buffer, mRaw: Buffer): Promise<void> {
    await this.cache.writeAtomic(memoName(this.fqrn), memoOf(this.keysId, wlRaw, mRaw), false).catch((e: unknown) => debug(`${this.fqrn}: verified chain not noted: ${(e as Error).message}`));
  }

  /**
   * The newest manifest, the whole chain verified, a lower revision than this cache trusted refused; kept as
   * the cache's last trusted state. A manifest that downloads but fails its checks is tried once more from the
   * next server, as the genuine client does.
   */
  async latest(): Promise<Verified> {
    try {
      return await this.latestFromCurrentServer();
    } catch (e) {
      const reason = (e as CvmfsError).reason;
      if (reason === undefined || reason === 'download' || reason === 'not-found' || !this.fetcher.failoverHost()) throw e;
      debug(`${this.fqrn}: ${(e as Error).message}; trying the next server`);
      return this.latestFromCurrentServer();
    }
  }

  private async latestFromCurrentServer(): Promise<Verified> {
    const [wl, m] = await this.whitelistAndManifest();
    if (this.prefetchRoot) {
      // The root catalog downloads while the certificate does and the chain is checked. Nothing is used before
      // the manifest is verified, and the object store keeps the catalog only if it matches its hash.
      this.prefetchRoot = false;
      try {
        this.store.get(parseManifest(m).rootCatalog, 'C', 'zlib').catch(() => undefined);
      } catch {
        // a manifest that does not parse fails in the chain below
      }
    }
    // A refresh (the TTL ran out) mostly brings the very bytes checked before: the memo vouches for them.
    const v = await this.verifyCached(wl, m, await this.cache.readSmall(memoName(this.fqrn)));
    const st = await this.cache.readState(this.fqrn);
    if (st && v.manifest.revision < st.revision) throw this.rollback(v.manifest.revision, st.revision);
    // The whitelist and manifest are not synced: after a crash, a torn or empty one fails its check and
    // `cached` fetches the chain again, while a sync cost every refresh (one per TTL) a few milliseconds of
    // waiting on the disk. The last trusted revision, written only when the revision rises, is synced: it
    // guards against rollback.
    await Promise.all([
      this.cache.renewSmall(`whitelist.${this.fqrn}`, wl),
      this.cache.renewSmall(`manifest.${this.fqrn}`, m),
      !st || v.manifest.revision > st.revision
        ? this.cache.writeState(this.fqrn, { revision: v.manifest.revision, rootHash: hashToString(v.manifest.rootCatalog), timestamp: v.manifest.timestamp })
        : undefined,
    ]);
    return v;
  }

  /**
   * The whitelist and the manifest, asked for at once. One after the other they cost two round trips; at once,
   * on two connections, one, and the root catalog and the certificate that follow find both connections open
   * (a cold open over a WAN waits two round trips instead of four). A server or proxy that fails both is left
   * once: the fetcher moves on only from the server or proxy still current. The whitelist's error is the one
   * thrown when both fail, as when it was asked for first.
   */
  private async whitelistAndManifest(): Promise<[Buffer, Buffer]> {
    const [wl, m] = await Promise.allSettled([
      this.fetcher.fetch('.cvmfswhitelist', bodyToBuffer),
      this.fetcher.fetch('.cvmfspublished', bodyToBuffer),
    ]);
    if (wl.status === 'rejected') throw wl.reason;
    if (m.status === 'rejected') throw m.reason;
    return [wl.value, m.value];
  }

  private rollback(revision: number, trusted: number): CvmfsError {
    return ioError('manifest-rollback', `manifest of ${this.fqrn} has revision ${revision}, older than revision ${trusted} already trusted in ${this.cache.dir}`);
  }

  /**
   * The chain at open: a cached one within its TTL (when `reuse`), else the network's. Jobs started together on
   * one cache fetch it once: one fetches while the others wait for its verified manifest, then take it from the
   * cache on the memo it left (once per TTL for all of them). With no server answering, a cached chain past its
   * TTL (checked again) still shows that revision, with a warning.
   */
  async atOpen(reuse: boolean, onWarning: (m: string) => void): Promise<Verified & { fresh: boolean }> {
    let verified: Verified | undefined;
    const task = reuse ? await this.cache.claimTask(`manifest.${this.fqrn}`, async () => !!(verified = await this.cached())) : undefined;
    let fresh = false;
    if (!verified) {
      try {
        verified = await this.latest();
        fresh = true;
      } catch (e) {
        if ((e as CvmfsError).reason !== 'download') throw e;
        verified = await this.cached(true);
        if (!verified) throw e;
        onWarning(`${this.fqrn}: no server reachable (${(e as Error).message}); offline with cached revision ${verified.manifest.revision}`);
      } finally {
        if (task && task !== 'done') await task.release();
      }
    }
    const state = await this.cache.readState(this.fqrn);
    if (state && verified.manifest.revision < state.revision) throw this.rollback(verified.manifest.revision, state.revision);
    return { ...verified, fresh };
  }

  /**
   * A cached chain still within its TTL (or at any age), checked again (on the memo where it vouches); undefined
   * when none or it fails.
   */
  private async cached(ignoreTtl = false): Promise<Verified | undefined> {
    try {
      const st = statSync(join(this.cache.dir, `manifest.${this.fqrn}`));
      const [wl, m, memo] = await Promise.all([
        this.cache.readSmall(`whitelist.${this.fqrn}`),
        this.cache.readSmall(`manifest.${this.fqrn}`),
        this.cache.readSmall(memoName(this.fqrn)),
      ]);
      const age = (this.now().getTime() - st.mtimeMs) / 1000;
      if (!wl || !m || age < 0) return undefined;
      const v = await this.verifyCached(wl, m, memo);
      return ignoreTtl || age <= v.manifest.ttl ? v : undefined;
    } catch {
      return undefined;
    }
  }
}
