import type { RuntimeDriver } from '../../src/core/runtime-driver.ts';
import { storeContext } from '../../src/core/store-context.ts';

/** The store's driver and its lifecycle, for tests that look under the public API (raw records, snapshots). */
export function runtimeOf(store: { readonly backend: string; readonly partitions: number }): RuntimeDriver {
  return storeContext(store).runtime;
}
