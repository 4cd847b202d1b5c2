import type { PartitionRange, StoredEvent } from '../../src/index.ts';

interface ReadsPartitions {
  readPartition(partition: number, range: PartitionRange): Promise<StoredEvent[]>;
}

/** Wraps the driver's readPartition to record the position each read started after (tests of read-ahead). */
export function recordReads(driver: ReadsPartitions): (bigint | undefined)[] {
  const readsAfter: (bigint | undefined)[] = [];
  const read = driver.readPartition.bind(driver);
  driver.readPartition = (partition: number, range: PartitionRange) => {
    readsAfter.push(range.after);
    return read(partition, range);
  };
  return readsAfter;
}
