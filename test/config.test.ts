/**
 * Configuration as the genuine client reads it: files in its order, shell-assignment syntax, environment on
 * top, unknown parameters kept, malformed lines named; a repository opened from configuration alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  const root = tree({ 'default.conf': 'CVMFS_A=1\nCVMFS_B = 2\n' });
  assert.throws(() => loadConfig(FQRN, { root, env: {} }), (e: Error & { code?: string }) => e.code === 'EINVAL' && e.message.includes(`${root}/default.conf:2`));
  const quote = tree({ 'default.local': 'CVMFS_A="unterminated\n' });
  assert.throws(() => loadConfig(FQRN, { root: quote, env: {} }), /default\.local:1: unterminated double quote/);
  // In a file that needs a shell, the shell's own complaints are named by file and line too.
  const unclosed = tree({ 'default.local': 'CVMFS_A=1\nif [ -n "$CVMFS_A" ]; then\n  CVMFS_B=2\n' });
  assert.throws(() => loadConfig(FQRN, { root: unclosed, env: {} }), (e: Error & { code?: string }) => e.code === 'EINVAL' && e.message.startsWith(`${unclosed}/default.local:`));
  const badCommand = tree({ 'default.local': 'if true; then\n  CVMFS_B = 2\nfi\n' });
  assert.throws(() => loadConfig(FQRN, { root: badCommand, env: {} }), (e: Error) => e.message.startsWith(`${badCommand}/default.local:2:`) && /not found/.test(e.message));
});

// Files in the styles the public packages write them (cvmfs-config-default, cvmfs-config-osg): tests on the
// environment, if/else on earlier parameters, commands in conditions, arithmetic, readonly.
test('files with shell logic, as the public config packages write them, are evaluated as the genuine client does', () => {
  const root = tree({
    'default.conf': [
      '# like the genuine default.conf',
      'CVMFS_TIMEOUT=5',
      'CVMFS_USE_GEOAPI=no',
      'if [ "x$CVMFS_BASE_ENV" = "x" ]; then',
      '  readonly CVMFS_USER=cvmfs',
      '  readonly CVMFS_MOUNT_DIR=/cvmfs',
      '  readonly CVMFS_BASE_ENV=1',
      'fi',
    ].join('\n'),
    'default.d/50-site-debian.conf': [
      'CVMFS_CONFIG_REPO_DEFAULT_ENV=',
      `if [ -f ${'/etc/hostname-that-is-not-there'} ] && grep -q "wheezy\\|jessie" /etc/hostname-that-is-not-there;`,
      'then',
      '    :',
      'else',
      '    CVMFS_CONFIG_REPOSITORY=cvmfs-config.example.org',
      'fi',
      'CVMFS_DEFAULT_DOMAIN=example.org',
    ].join('\n'),
    'default.d/60-cdn.conf': 'CVMFS_USE_CDN=yes\n',
    'domain.d/test.example.org.conf': [
      'if [ "$CVMFS_CONFIG_REPO_DEFAULT_ENV" = "" ]; then',
      '  if [ "$CVMFS_USE_CDN" = "yes" ]; then',
      '    CVMFS_SERVER_URL="http://cdn1.example.org/cvmfs/@fqrn@;http://cdn2.example.org/cvmfs/@fqrn@"',
      '  else',
      '    CVMFS_SERVER_URL="http://s1.example.org:8000/cvmfs/@fqrn@"',
      '  fi',
      '  CVMFS_KEYS_DIR=/etc/cvmfs/keys/example.org',
      '  CVMFS_USE_GEOAPI=yes',
      'fi',
    ].join('\n'),
    'config.d/fixture.test.example.org.conf': [
      'if [ -z "$CVMFS_PAC_URLS" ] || [ "$CVMFS_PAC_URLS" = "http://wpad/wpad.dat" ]; then',
      '  if [ "$(($$ % 2))" -ge 0 ]; then',
      '    CVMFS_PAC_URLS="http://grid-wpad/wpad.dat;http://wpad/wpad.dat"',
      '  fi',
      'fi',
      'export GLITE_VERSION=${GLITE_VERSION:=default}',
      // What a file prints, or reads from stdin, does not disturb the values read back.
      'if command -v sh; then echo "1printed"; fi',
      'read -r nothing || true',
    ].join('\n'),
  });
  const c = loadConfig(FQRN, { root, env: { PATH: process.env.PATH } });
  assert.equal(c.get('CVMFS_MOUNT_DIR'), '/cvmfs');
  assert.equal(c.params.get('CVMFS_MOUNT_DIR')!.source, `${root}/default.conf:6`);
  assert.equal(c.get('CVMFS_CONFIG_REPOSITORY'), 'cvmfs-config.example.org');
  assert.equal(c.get('CVMFS_SERVER_URL'), 'http://cdn1.example.org/cvmfs/@fqrn@;http://cdn2.example.org/cvmfs/@fqrn@');
  assert.equal(c.params.get('CVMFS_SERVER_URL')!.source, `${root}/domain.d/test.example.org.conf:3`);
  assert.equal(c.get('CVMFS_USE_GEOAPI'), 'yes');
  assert.equal(c.get('CVMFS_PAC_URLS'), 'http://grid-wpad/wpad.dat;http://wpad/wpad.dat');
  assert.equal(c.get('GLITE_VERSION'), 'default');
  // The same domain file, with a configuration repository in use (its default.conf sets the marker): skipped.
  const withRepo = loadConfig(FQRN, {
    root, env: { PATH: process.env.PATH },
    configRepository: { fqrn: 'cvmfs-config.example.org', dir: '/cvmfs/cvmfs-config.example.org/etc/cvmfs', texts: new Map([
      ['default.conf', 'CVMFS_CONFIG_REPO_DEFAULT_ENV=1\nCVMFS_CONFIG_REPOSITORY=somewhere-else.example.org\n'],
      ['domain.d/test.example.org.conf', 'CVMFS_SERVER_URL="http://from-config-repo.example.org/cvmfs/@fqrn@"\n'],
    ]) },
  });
  assert.equal(withRepo.get('CVMFS_SERVER_URL'), 'http://from-config-repo.example.org/cvmfs/@fqrn@');
  assert.equal(withRepo.params.get('CVMFS_SERVER_URL')!.source, '/cvmfs/cvmfs-config.example.org/etc/cvmfs/domain.d/test.example.org.conf:1');
  assert.equal(withRepo.get('CVMFS_CONFIG_REPOSITORY'), 'cvmfs-config.example.org', 'protected once default.d is read');
  assert.deepEqual(withRepo.files.slice(3, 5).map((f) => f.replace(root, '')), ['/cvmfs/cvmfs-config.example.org/etc/cvmfs/default.conf', '/cvmfs/cvmfs-config.example.org/etc/cvmfs/domain.d/test.example.org.conf']);
});

test('built-in defaults: the genuine default.conf values and the public domains\' servers and keys', async () => {
  const empty = tempDir('ucvmfs-noconf-');
  const c = loadConfig('atlas.cern.ch', { root: empty, env: {} });
  assert.equal(c.get('CVMFS_TIMEOUT'), '5');
  assert.equal(c.get('CVMFS_TIMEOUT_DIRECT'), '10');
  assert.equal(c.params.get('CVMFS_SERVER_URL')!.source, 'built-in');
  assert.match(c.get('CVMFS_SERVER_URL')!, /^http:\/\/cvmfs-stratum-one\.cern\.ch\/cvmfs\/@fqrn@;/);
  assert.equal(c.get('CVMFS_KEYS_DIR'), '/etc/cvmfs/keys/cern.ch');
  assert.equal(loadConfig('oasis.opensciencegrid.org', { root: empty, env: {} }).get('CVMFS_KEYS_DIR'), '/etc/cvmfs/keys/opensciencegrid.org');
  assert.equal(loadConfig(FQRN, { root: empty, env: {} }).get('CVMFS_SERVER_URL'), undefined, 'no servers for an unknown domain');
  const { resolveRepositoryConfig } = await import('../lib/index.js');
  const { rsaKeysFromPem } = await import('../lib/crypto/rsa.js');
  for (const [fqrn, n] of [['atlas.cern.ch', 3], ['dirac.egi.eu', 1], ['oasis.opensciencegrid.org', 1]] as const) {
    const r = await resolveRepositoryConfig(fqrn, { configRoot: empty, configRepository: false });
    const keys = await r.keysIn(r.config.get('CVMFS_KEYS_DIR')!);
    assert.equal(keys.length, n, fqrn);
    for (const k of keys) assert.equal(rsaKeysFromPem(k.pem)[0]!.size, 256, `${fqrn}: ${k.source}`);
  }
  const shown = await ucvmfs(['config', 'atlas.cern.ch'], { UCVMFS_CONFIG_DIR: empty });
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout.toString(), /^CVMFS_USE_GEOAPI=yes    # from built-in$/m);
});

test('a configuration repository provides servers and keys; required or not when it cannot be read', async () => {
  const { publish } = await import('../lib/publish/index.js');
  const CONF = 'cvmfs-config.test.example.org';
  const server0 = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  // The configuration repository, published by us, holding the fixture's server list and key.
  const src = tempDir('ucvmfs-confsrc-');
  const out = tempDir('ucvmfs-confout-');
  mkdirSync(join(src, 'etc/cvmfs/domain.d'), { recursive: true });
  mkdirSync(join(src, 'etc/cvmfs/keys/test.example.org'), { recursive: true });
  writeFileSync(join(src, 'etc/cvmfs/default.conf'), 'CVMFS_CONFIG_REPO_DEFAULT_ENV=1\n');
  writeFileSync(join(src, 'etc/cvmfs/domain.d/test.example.org.conf'),
    `CVMFS_SERVER_URL="${server0.url}/@fqrn@"\nCVMFS_KEYS_DIR=$CVMFS_MOUNT_DIR/$CVMFS_CONFIG_REPOSITORY/etc/cvmfs/keys/test.example.org\n`);
  writeFileSync(join(src, `etc/cvmfs/keys/test.example.org/${FQRN}.pub`), readFileSync(keyOf(FQRN)));
  const pub = await publish(src, { fqrn: CONF, out: join(out, CONF), readSourceXattrs: false });
  const confServer = await serve({ [CONF]: join(out, CONF) });
  const root = tree({
    'default.d/50-site.conf': `CVMFS_CONFIG_REPOSITORY=${CONF}\n`,
    [`config.d/${CONF}.conf`]: `CVMFS_SERVER_URL="${confServer.url}/@fqrn@"\nCVMFS_PUBLIC_KEY=${pub.publicKeyPath}\n`,
    // The local domain file steps aside when the configuration repository is in use, as the public one does.
    'domain.d/test.example.org.conf': 'if [ "$CVMFS_CONFIG_REPO_DEFAULT_ENV" = "" ]; then\n  CVMFS_SERVER_URL=http://127.0.0.1:1/cvmfs/@fqrn@\nfi\n',
  });
  const cache = tempDir('ucvmfs-confcache-');
  const truth = readTruth(FQRN);
  try {
    const repo = await openRepository(FQRN, { configRoot: root, cacheDir: cache });
    try {
      assert.equal(repo.revision, Number(truth.manifest_fields.S));
      assert.equal((await repo.fs.readFile('/README.txt')).length, truth.entries['/README.txt']!.size);
    } finally {
      repo.close();
    }
    const shown = await ucvmfs(['config', FQRN, '--cache', cache], { UCVMFS_CONFIG_DIR: root });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout.toString(), new RegExp(`^CVMFS_SERVER_URL=${server0.url}/@fqrn@    # from /cvmfs/${CONF}/etc/cvmfs/domain.d/test.example.org.conf:1$`, 'm'));
    // The configuration repository gone: a warning and the local files (whose dead server then fails) ...
    await confServer.close();
    const warnings: string[] = [];
    const fresh = tempDir('ucvmfs-confcache2-');
    await assert.rejects(openRepository(FQRN, { configRoot: root, cacheDir: fresh, timeoutMs: 2000, onWarning: (m) => warnings.push(m) }), /no public key|cannot download/);
    assert.match(warnings.join('\n'), new RegExp(`configuration repository ${CONF} cannot be read`));
    // ... or, when it is required, an EIO naming it.
    writeFileSync(join(root, 'default.local'), 'CVMFS_CONFIG_REPO_REQUIRED=yes\n');
    await assert.rejects(openRepository(FQRN, { configRoot: root, cacheDir: tempDir('ucvmfs-confcache3-'), timeoutMs: 2000 }),
      (e: Error & { code?: string; reason?: string }) => e.code === 'EIO' && e.reason === 'config-repository' && e.message.includes(CONF));
  } finally {
    await server0.close();
    await confServer.close().catch(() => undefined);
  }
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
