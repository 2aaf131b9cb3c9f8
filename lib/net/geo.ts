/**
 * The Stratum-1 geo API (CVMFS_USE_GEOAPI): the client sends the host names of its servers, sorted, to
 * `<server>/api/v1.0/geo/<proxy or client id>/<name>,<name>,...` and gets back the same number of 1-based
 * indices, nearest first (`2,1,3\n`). Pure functions; the request is made by the fetcher.
 * @module
 */

/** The bare host name of a server URL (no scheme, user, port or path), as the genuine client sends it. */
export function hostName(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url.replace(/^[a-z]+:\/\//i, '').replace(/^[^@/]*@/, '').replace(/[:/].*$/, '');
  }
}

/** The names to send, sorted, and for each the index of its server in `servers`. */
export function geoQuery(servers: readonly string[]): { names: string[]; serverOf: number[] } {
  const items = servers.map((s, i) => ({ name: hostName(s), i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.i - b.i));
  return { names: items.map((x) => x.name), serverOf: items.map((x) => x.i) };
}

/** The request path below a server URL. */
export function geoPath(requester: string, names: readonly string[]): string {
  return `api/v1.0/geo/${encodeURIComponent(requester).replace(/%2C/gi, ',').replace(/%40/g, '@').replace(/%2B/gi, '+').replace(/%3A/gi, ':')}/${names.join(',')}`;
}

/** A reply as 0-based indices into the names sent, or undefined unless it is exactly a permutation of 1..n. */
export function parseGeoReply(text: string, n: number): number[] | undefined {
  if (!/^[0-9,\n]+$/.test(text)) return undefined;
  const fields = text.replace(/\n+$/, '').split(',');
  if (fields.length !== n || fields.some((f) => !/^[0-9]+$/.test(f))) return undefined;
  const idx = fields.map((f) => Number(f) - 1);
  const seen = new Set(idx);
  if (seen.size !== n || idx.some((i) => i < 0 || i >= n)) return undefined;
  return idx;
}
