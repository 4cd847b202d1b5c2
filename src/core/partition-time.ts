import type { EventStoreDriver } from './driver.ts';

/**
 * An offset to read a partition after, so the read starts at the first event appended at or
 * after `time`: the one before that event's, or undefined to read from the start (no time index,
 * or nothing earlier); the partition's head when no event is that recent.
 */
export async function offsetBeforeTime(driver: EventStoreDriver, partition: number, time: number): Promise<bigint | undefined> {
  if (!driver.firstOffsetAtTime) return undefined;
  const first = await driver.firstOffsetAtTime(partition, time);
  if (first === undefined) return driver.partitionHead(partition);
  return first === 0n ? undefined : first - 1n;
}
