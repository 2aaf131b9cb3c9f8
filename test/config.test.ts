/**
 * Configuration as the genuine client reads it: files in its order, shell-assignment syntax, environment on
 * top, unknown parameters kept, malformed lines named; a repository opened from configuration alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig, openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, serve, tempDir, ucvmfs } from './helpers.js';

const FQRN = 'fixture.test.example.org';

function tree(files: Record<string, string>): string {
  const root = tempDir('ucvmfs-etc-');
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}

test('files are read in the genuine order with shell syntax; later files and the environment win', () => {
  const root = tree({
    'default.conf': '# defaults\nCVMFS_QUOTA_LIMIT=4000\nCVMFS_TIMEOUT=5 # seconds\nCVMFS_CACHE_BASE=/var/lib/cvmfs\n',
    'default.d/50-site.conf': "export CVMFS_HTTP_PROXY='http://squid1:3128|http://squid2:3128;DIRECT'\nCVMFS_QUOTA_LIMIT=2000\n",
    'default.local': 'CVMFS_REPOSITORIES=atlas.cern.ch,cms.cern.ch\nSITE=my-site\n',
    'domain.d/test.example.org.conf': 'CVMFS_SERVER_URL=${CVMFS_SERVER_URL_OVERRIDE:="http://s1.example.org/cvmfs/@fqrn@;http://s2.example.org/cvmfs/@fqrn@"}\nCVMFS_KEYS_DIR=/etc/cvmfs/keys/example.org\n',
    'config.d/fixture.test.example.org.local': 'CVMFS_SITE_NAME="$SITE-${CVMFS_FQRN}"\nCVMFS_UNKNOWN_THING="kept, not an error"\nCVMFS_QUOTA_LIMIT=500\n',
    'config.d/other.test.example.org.conf': 'CVMFS_QUOTA_LIMIT=1\n',
  });
  const c = loadConfig(FQRN, { root, env: { CVMFS_TIMEOUT: '20' } });
  assert.deepEqual(c.files.map((f) => f.slice(root.length)), ['/default.conf', '/default.d/50-site.conf', '/default.local', '/domain.d/test.example.org.conf', '/config.d/fixture.test.example.org.local']);
  assert.equal(c.get('CVMFS_QUOTA_LIMIT'), '500');
  assert.equal(c.params.get('CVMFS_QUOTA_LIMIT')!.source, `${root}/config.d/fixture.test.example.org.local:3`);
  assert.equal(c.get('CVMFS_TIMEOUT'), '20');
  assert.equal(c.params.get('CVMFS_TIMEOUT')!.source, 'environment');
  assert.equal(c.get('CVMFS_HTTP_PROXY'), 'http://squid1:3128|http://squid2:3128;DIRECT');
  assert.equal(c.get('CVMFS_SERVER_URL'), 'http://s1.example.org/cvmfs/@fqrn@;http://s2.example.org/cvmfs/@fqrn@');
  assert.equal(c.get('CVMFS_SITE_NAME'), `my-site-${FQRN}`);
  assert.equal(c.get('CVMFS_UNKNOWN_THING'), 'kept, not an error');
  const overridden = loadConfig(FQRN, { root, env: { CVMFS_SERVER_URL_OVERRIDE: 'http://mine/cvmfs/@fqrn@' } });
  assert.equal(overridden.get('CVMFS_SERVER_URL'), 'http://mine/cvmfs/@fqrn@', '${VAR:=default} keeps a set variable');
});

test('a malformed line is an error naming file and line', () => {
  const root = tree({ 'default.conf': 'CVMFS_A=1\nif [ -n "$X" ]; then CVMFS_B=2; fi\n' });
  assert.throws(() => loadConfig(FQRN, { root, env: {} }), (e: Error & { code?: string }) => e.code === 'EINVAL' && e.message.includes(`${root}/default.conf:2`));
  const quote = tree({ 'default.local': 'CVMFS_A="unterminated\n' });
  assert.throws(() => loadConfig(FQRN, { root: quote, env: {} }), /default\.local:1: unterminated double quote/);
});

test('a repository opens from configuration files alone; ucvmfs config shows each parameter and its source', async () => {
  const truth = readTruth(FQRN);
  const server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const keys = tempDir('ucvmfs-keys-');
  writeFileSync(join(keys, `${FQRN}.pub`), (await import('node:fs')).readFileSync(keyOf(FQRN)));
  const cache = tempDir('ucvmfs-cfgcache-');
  const root = tree({
    'default.local': `CVMFS_CACHE_BASE=${cache}\nCVMFS_QUOTA_LIMIT=100\n`,
    'domain.d/test.example.org.conf': `CVMFS_SERVER_URL="http://127.0.0.1:1/cvmfs/@fqrn@;${server.url}/@fqrn@"\nCVMFS_KEYS_DIR=${keys}\n`,
  });
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith('CVMFS_')) delete process.env[k];
  try {
    const repo = await openRepository(FQRN, { configRoot: root });
    try {
      assert.equal(repo.revision, Number(truth.manifest_fields.S));
      assert.equal((await repo.fs.readFile('/README.txt')).length, truth.entries['/README.txt']!.size);
      assert.ok(repo.stats().failovers >= 1, 'the first (dead) server was skipped');
    } finally {
      repo.close();
    }
    const shown = await ucvmfs(['config', FQRN], { UCVMFS_CONFIG_DIR: root, CVMFS_TIMEOUT: '7' });
    assert.equal(shown.code, 0, shown.stderr);
    const text = shown.stdout.toString();
    assert.match(text, new RegExp(`^CVMFS_KEYS_DIR=${keys}    # from ${root}/domain.d/test.example.org.conf:2$`, 'm'));
    assert.match(text, /^CVMFS_TIMEOUT=7    # from environment$/m);
    assert.match(text, new RegExp(`^CVMFS_QUOTA_LIMIT=100    # from ${root}/default.local:2$`, 'm'));
  } finally {
    process.env = saved;
    await server.close();
  }
});
