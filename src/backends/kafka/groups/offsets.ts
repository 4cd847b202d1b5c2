import { type Admin, FetchIsolationLevels, ListOffsetTimestamps } from '@platformatic/kafka';
import { DriverError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { hasApiError, KAFKA } from '../errors.ts';

export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: number[];
}

/** A committed offset of the group, with the head's delivery count when its metadata (commits.ts) recorded one. */
export interface CommittedOffset {
  readonly offset: bigint;
  readonly metadata: string | null;
  readonly head: { offset: bigint; deliveries: number } | undefined;
}

/** Committed offsets (with our metadata) of the group, by `topic/partition`; absent where nothing is committed. */
export async function committedOffsets(admin: Admin, groupId: string, wanted: TopicPartitions[]): Promise<Map<string, CommittedOffset>> {
  // A dead member's dead-letter transaction holds its offsets unstable until the coordinator
  // aborts it (the producer's transaction timeout, 5 s): wait that out.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const [listed] = await admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: wanted.map(({ topic, partitions }) => ({ name: topic, partitionIndexes: partitions })) }],
        // Offsets of a dead-letter transaction still in progress: wait for its outcome.
        requireStable: true,
      });
      const out = new Map<string, CommittedOffset>();
      for (const topic of listed?.topics ?? []) {
        for (const partition of topic.partitions) {
          if (partition.committedOffset < 0n) continue;
          const match = /^ef:(\d+):(\d+)$/.exec(partition.metadata ?? '');
          const head =
            match && BigInt(match[1]!) === partition.committedOffset
              ? { offset: partition.committedOffset, deliveries: Number(match[2]) }
              : undefined;
          out.set(`${topic.name}/${partition.partitionIndex}`, {
            offset: partition.committedOffset,
            metadata: partition.metadata ?? null,
            head,
          });
        }
      }
      return out;
    } catch (error) {
      if (!hasApiError(error, 'UNSTABLE_OFFSET_COMMIT', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR') || Date.now() > deadline)
        throw error;
      await sleep(50);
    }
  }
}

/** First offset (`beginning`) or last stable offset (`end`) of the events partitions. */
export async function offsetBoundaries(
  admin: Admin,
  topic: string,
  partitions: number[],
  where: 'beginning' | 'end',
): Promise<{ partition: number; offset: bigint }[]> {
  const timestamp = where === 'end' ? ListOffsetTimestamps.LATEST : ListOffsetTimestamps.EARLIEST;
  const [listed] = await admin.listOffsets({
    topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  });
  return partitions.map((partition) => {
    const offset = listed?.partitions.find((answer) => answer.partitionIndex === partition)?.offset;
    if (offset === undefined) throw new DriverError(KAFKA, `no ${where} offset for partition ${partition} of ${topic}`);
    return { partition, offset };
  });
}
