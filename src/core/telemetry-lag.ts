import type { RuntimeDriver } from './runtime-driver.ts';

/** Lag gauges count at most this many events per partition: a reading is exact below it, "at least this" at it. */
export const LAG_COUNT_LIMIT = 1000;

/**
 * Events stored in `partition` after offset `after` (undefined: from the start), counted up to
 * `LAG_COUNT_LIMIT`. Offsets are not counts on every backend (Redis stream ids), so the events
 * are read, not subtracted; the head is asked first, so a caught-up partition costs one call.
 */
export async function eventsAfter(runtime: RuntimeDriver, partition: number, after: bigint | undefined): Promise<number> {
  if (runtime.closed) return 0;
  return runtime.use(async (driver) => {
    const head = await driver.partitionHead(partition);
    if (head === undefined || (after !== undefined && after >= head)) return 0;
    const page = await driver.readPartition(partition, { after, limit: LAG_COUNT_LIMIT });
    return page.length;
  });
}
