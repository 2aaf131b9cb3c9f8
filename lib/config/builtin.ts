/**
 * Built-in defaults for a node with no configuration at all: the genuine `default.conf` values this client
 * uses, and for the public domains the Stratum-1 lists and master public keys that the public
 * cvmfs-config-default package installs (`domain.d/<domain>.conf`, `keys/<domain>/*.pub`), so that
 * `ucvmfs ls atlas.cern.ch` works on a connected machine with nothing set up. Files under /etc/cvmfs, when
 * present, override all of it; a keys directory that exists on disk is read from disk.
 *
 * osg-htc.org is not in that package (the OSG configuration repository serves it); it is given the
 * opensciencegrid.org servers and key, which sign and serve both domains.
 * @module
 */

/** `default.conf` parameters of the genuine client that this client reads. */
export const BUILTIN_DEFAULTS: Readonly<Record<string, string>> = {
  CVMFS_QUOTA_LIMIT: '4000',
  CVMFS_TIMEOUT: '5',
  CVMFS_TIMEOUT_DIRECT: '10',
  CVMFS_SHARED_CACHE: 'yes',
  CVMFS_KEYS_DIR: '/etc/cvmfs/keys',
  CVMFS_PROXY_RESET_AFTER: '300',
  CVMFS_HOST_RESET_AFTER: '1800',
  CVMFS_MAX_RETRIES: '1',
  CVMFS_BACKOFF_INIT: '2',
  CVMFS_BACKOFF_MAX: '10',
  CVMFS_USE_GEOAPI: 'no',
  CVMFS_LOW_SPEED_LIMIT: '1024',
  CVMFS_MOUNT_DIR: '/cvmfs',
};

/** Per public domain: its `domain.d/<domain>.conf` parameters. */
export const BUILTIN_DOMAINS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'cern.ch': { CVMFS_SERVER_URL: 'http://cvmfs-stratum-one.cern.ch/cvmfs/@fqrn@;http://cernvmfs.gridpp.rl.ac.uk/cvmfs/@fqrn@;http://cvmfs-s1bnl.opensciencegrid.org/cvmfs/@fqrn@;http://cvmfs-s1fnal.opensciencegrid.org/cvmfs/@fqrn@', CVMFS_KEYS_DIR: '/etc/cvmfs/keys/cern.ch', CVMFS_USE_GEOAPI: 'yes' },
  'egi.eu': { CVMFS_SERVER_URL: 'http://cvmfs-egi.gridpp.rl.ac.uk:8000/cvmfs/@fqrn@;http://klei.nikhef.nl:8000/cvmfs/@fqrn@;http://cvmfsrepo.lcg.triumf.ca:8000/cvmfs/@fqrn@;http://cvmfs-stratum-one.ihep.ac.cn:8000/cvmfs/@fqrn@', CVMFS_KEYS_DIR: '/etc/cvmfs/keys/egi.eu', CVMFS_USE_GEOAPI: 'yes' },
  'opensciencegrid.org': { CVMFS_SERVER_URL: 'http://cvmfs-egi.gridpp.rl.ac.uk:8000/cvmfs/@fqrn@;http://klei.nikhef.nl:8000/cvmfs/@fqrn@;http://cvmfs-s1bnl.opensciencegrid.org:8000/cvmfs/@fqrn@;http://cvmfs-s1fnal.opensciencegrid.org:8000/cvmfs/@fqrn@;http://cvmfs-stratum-one.ihep.ac.cn:8000/cvmfs/@fqrn@', CVMFS_KEYS_DIR: '/etc/cvmfs/keys/opensciencegrid.org', CVMFS_USE_GEOAPI: 'yes' },
  'osg-htc.org': { CVMFS_SERVER_URL: 'http://cvmfs-egi.gridpp.rl.ac.uk:8000/cvmfs/@fqrn@;http://klei.nikhef.nl:8000/cvmfs/@fqrn@;http://cvmfs-s1bnl.opensciencegrid.org:8000/cvmfs/@fqrn@;http://cvmfs-s1fnal.opensciencegrid.org:8000/cvmfs/@fqrn@;http://cvmfs-stratum-one.ihep.ac.cn:8000/cvmfs/@fqrn@', CVMFS_KEYS_DIR: '/etc/cvmfs/keys/opensciencegrid.org', CVMFS_USE_GEOAPI: 'yes' },
};

/** The master public keys those packages install, by keys directory. */
export const BUILTIN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '/etc/cvmfs/keys/cern.ch': [
    `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAo8uKvscgW7FNxzb65Uhm
yr8jPJiyrl2kVzb/hhgdfN14C0tCbfFoE6ciuZFg+9ytLeiL9pzM96gSC+atIFl4
7wTgtAFO1W4PtDQBwA/IG2bnwvNrzk19ob0JYhjZlS9tYKeh7TKCub55+vMwcEbP
urzo3WSNCzJngiGMh1vM5iSlGLpCdSGzdwxLGwc1VjRM7q3KAd7M7TJCynKqXZPX
R2xiD6I/p4xv39AnwphCFSmDh0MWE1WeeNHIiiveikvvN+l8d/ZNASIDhKNCsz6o
aFDsGXvjGy7dg43YzjSSYSFGUnONtl5Fe6y4bQZj1LEPbeInW334MAbMwYF4LKma
yQIDAQAB
-----END PUBLIC KEY-----`,
    `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzlAraXimfJP5ie0KtDAE
rNUU5d9bzst+kqfhnb0U0OUtmCIbsueaDlbMmTdRSHMr+T0jI8i9CZxJwtxDqll+
UuB3Li2hYBhk0tYTy29JJYvofVULvrw1kMSLKyTWnV30/MHjYxhLHoZWfdepTjVg
lM0rP58K10wR3Z/AaaikOcy4z6P/MHs9ES1jdZqEBQEmmzKw5nf7pfU2QuVWJrKP
wZ9XeYDzipVbMc1zaLEK0slE+bm2ge/Myvuj/rpYKT+6qzbasQg62abGFuOrjgKI
X4/BVnilkhUfH6ssRKw4yehlKG1M5KJje2+y+iVvLbfoaw3g1Sjrf4p3Gq+ul7AC
PwIDAQAB
-----END PUBLIC KEY-----`,
    `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqFzLLZAg2xmHJLbbq0+N
eYtjRDghUK5mYhARndnC3skFVowDTiqJVc9dIDX5zuxQ9HyC0iKM1HbvN64IH/Uf
qoXLyZLiXbFwpg6BtEJxwhijdZCiCC5PC//Bb7zSFIVZvWjndujr6ejaY6kx3+jI
sU1HSJ66pqorj+D1fbZCziLcWbS1GzceZ7aTYYPUdGZF1CgjBK5uKrEAoBsPgjWo
+YOEkjskY7swfhUzkCe0YyMyAaS0gsWgYrY2ebrpauFFqKxveKWjDVBTGcwDhiBX
60inUgD6CJXhUpvGHfU8V7Bv6l7dmyzhq/Bk2kRC92TIvxfaHRmS7nuknUY0hW6t
2QIDAQAB
-----END PUBLIC KEY-----`,
  ],
  '/etc/cvmfs/keys/egi.eu': [`-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxKhc7s1HmmPWH4Cq1U3K
4FNFKcMQgZxUrgQEfvgkF97OZ8I8wzC9MWqmegX6tqlPmAzYWTM+Xi4nEBWYRhd+
hVN/prHyYGzb/kTyCSHa9EQtIk9SUyoPfQxkGRnx68pD5con8KJySNa8neplsXx+
2gypwjasBRQLzB3BrrGhrzZ5fL84+dsxNBBW6QfNO1BS5ATeWl3g1J27f0GoGtRO
YbPhaAd9D+B+qVo9pt3jKXvjTZQG0pE16xaX1elciFT9OhtZGaErDJyURskD7g3/
NotcpBL5K5v95zA/kh5u+TRrmeTxHyDOpyrGrkqRaT5p+/C1z0HDyKFQbptegCbn
GwIDAQAB
-----END PUBLIC KEY-----`],
  '/etc/cvmfs/keys/opensciencegrid.org': [`-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqQGYXTp9cRcMbGeDoijB
gKNTCEpIWB7XcqIHVXJjfxEkycQXMyZkB7O0CvV3UmmY2K7CQqTnd9ddcApn7BqQ
/7QGP0H1jfXLfqVdwnhyjIHxmV2x8GIHRHFA0wE+DadQwoi1G0k0SNxOVS5qbdeV
yiyKsoU4JSqy5l2tK3K/RJE4htSruPCrRCK3xcN5nBeZK5gZd+/ufPIG+hd78kjQ
Dy3YQXwmEPm7kAZwIsEbMa0PNkp85IDkdR1GpvRvDMCRmUaRHrQUPBwPIjs0akL+
qoTxJs9k6quV0g3Wd8z65s/k5mEZ+AnHHI0+0CL3y80wnuLSBYmw05YBtKyoa1Fb
FQIDAQAB
-----END PUBLIC KEY-----`],
};
