/**
 * Variant symlinks: `$(VAR)` and `$(VAR:-default)` in a stored target are expanded from the client's variables
 * (catalog_sql.cc, ExpandSymlink). An unset variable without a default expands to nothing.
 * @module
 */

/** Expands `$(VAR)` / `$(VAR:-default)` in a raw symlink target. */
export function expandVariantSymlink(raw: string, lookup: (name: string) => string | undefined): string {
  if (!raw.includes('$(')) return raw;
  return raw.replace(/\$\(([A-Za-z0-9_]+)(?::-([^)]*))?\)/g, (_m, name: string, dflt: string | undefined) => {
    const v = lookup(name);
    return v !== undefined && v !== '' ? v : (dflt ?? '');
  });
}
