/**
 * What the catalog writer and its helpers share: the statistics counters, a catalog as written, and where rows go.
 * @module
 */
import type { SqlValue } from 'sql.js';
import type { ContentHash } from '../format/hash.js';

/** The statistics counters (without the `self_` / `subtree_` prefix), in the order the genuine stores them. */
export const COUNTER_NAMES = ['chunked', 'chunked_size', 'chunks', 'dir', 'external', 'external_file_size', 'file_size', 'nested', 'regular', 'special', 'symlink', 'xattr'] as const;

/** One set of statistics counters. */
export type Counters = Record<(typeof COUNTER_NAMES)[number], number>;

/** A catalog as written (or kept). */
export interface WrittenCatalog {
  readonly path: string;
  readonly hash: ContentHash;
  /** Size of the uncompressed database. */
  readonly size: number;
  readonly revision: number;
  readonly self: Counters;
  readonly subtree: Counters;
  /** True when the previous revision's catalog was kept. */
  readonly reused: boolean;
  /** This catalog and all below it. */
  readonly catalogs: number;
}

/** A value as the catalog writer hands it to SQLite. */
export type Row = SqlValue | bigint;

/**
 * Where a catalog's rows go: into its database (catalog-writer.ts), or into the list that tells whether they
 * are the previous revision's (same-rows.ts). Values in the order of the tables' columns.
 */
export interface RowSink {
  entry(values: Row[]): void;
  chunk(values: Row[]): void;
}
