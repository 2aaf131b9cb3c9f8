/**
 * The connector's two native layers, which every connector test runs in: the preload library (dynamically linked
 * programs answered in process) with ptrace behind it, and ptrace alone (what static programs and raw system
 * calls get).
 */
import { test, type TestContext } from 'node:test';

/** Each layer's name and the environment that selects it. */
export const LAYERS = [['preload + ptrace', {}], ['ptrace only', { UCVMFS_NO_PRELOAD: '1' }]] as const satisfies readonly (readonly [string, Record<string, string>])[];

/**
 * A `layered(name, fn)` that registers a test once per layer; `use` gets the layer's environment before the test
 * runs and `{}` after it.
 */
export function layeredWith(use: (env: Record<string, string>) => void, options: { skip?: string | boolean; timeout?: number } = {}) {
  return (name: string, fn: (t: TestContext) => Promise<void>): void => {
    for (const [layer, e] of LAYERS) {
      test(`${name} [${layer}]`, options, async (t) => {
        use(e);
        try {
          await fn(t);
        } finally {
          use({});
        }
      });
    }
  };
}
