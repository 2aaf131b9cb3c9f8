/** The library's version, reported by `user.version` and the CLI. */
export const VERSION = '0.1.0';
