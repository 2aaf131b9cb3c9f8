/**
 * What `auto` proxies cost an open: `openRepository` with `proxies: 'auto;DIRECT'` (a PAC file fetched and run in
 * its sandbox) against `DIRECT`, alternating, on a warm cache over loopback. Prints medians and minima.
 *
 *   node dist/bench/pac-open.js [runs]
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { serveRepositories } from '../lib/serve.js';
import { fixturesDir } from '../test/fixtures-location.js';

const FQRN = 'fixture.test.example.org';
const runs = Number(process.argv[2] ?? 12);
const work = mkdtempSync(join(tmpdir(), 'ucvmfs-pac-bench-'));
// A script of the kind sites publish: one DNS question, then an answer.
writeFileSync(join(work, 'wpad.dat'), 'function FindProxyForURL(url, host) { return isInNet(dnsResolve(host), "127.0.0.0", "255.0.0.0") ? "DIRECT" : "PROXY squid.example.org:3128; DIRECT"; }\n');
const srv = await serveRepositories({ [FQRN]: join(fixturesDir(), FQRN, 'srv'), 'site.example.org': work });
process.env.CVMFS_PAC_URLS = `${srv.url}/site.example.org/wpad.dat`;
delete process.env.http_proxy;
const times: Record<string, number[]> = { DIRECT: [], 'auto;DIRECT': [] };
try {
  for (let i = 0; i < runs; i++) {
    for (const proxies of Object.keys(times)) {
      const t0 = performance.now();
      const r = await openRepository(FQRN, { serverUrls: [`${srv.url}/@fqrn@`], publicKeys: [join(fixturesDir(), FQRN, `${FQRN}.pub`)], cacheDir: join(work, 'cache'), proxies });
      times[proxies]!.push(performance.now() - t0);
      await r.close();
    }
  }
} finally {
  await srv.close();
  rmSync(work, { recursive: true, force: true });
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const [k, v] of Object.entries(times)) console.log(`${k.padEnd(12)} median ${median(v).toFixed(1)} ms, min ${Math.min(...v).toFixed(1)} ms (${v.length} opens)`);
console.log(`ratio auto/DIRECT: ${(median(times['auto;DIRECT']!) / median(times.DIRECT!)).toFixed(1)}x`);
