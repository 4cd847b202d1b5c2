// The group's committed offsets: read back on each new assignment, written through the transaction.
import type { Admin, Message } from '@platformatic/kafka';
import { sleep } from '../../../core/sleep.ts';
import { hasApiError } from '../errors.ts';
import type { TopicLayout } from '../layout.ts';
import type { PartitionLog } from '../log.ts';
import { topicPartitionOf } from './topic-partition.ts';

export interface OffsetSource {
  readonly admin: Admin;
  readonly log: PartitionLog;
  readonly layout: TopicLayout;
  /** The projector's Kafka consumer group. */
  readonly groupId: string;
  /** `start`: where a partition with no committed offset starts. */
  readonly options: { readonly start?: 'beginning' | 'end' };
  /** Other instances' pending commits are waited for up to this plus 10 s. */
  readonly transactionTimeoutMs: number;
  readonly stop: AbortSignal;
}

/** The group's committed offsets for `partitions`, waiting out other instances' pending transactions. */
export async function committedPositions(source: OffsetSource, partitions: readonly number[]): Promise<Map<number, bigint>> {
  const positions = new Map<number, bigint>();
  if (partitions.length === 0) return positions;
  const { layout } = source;
  const byTopic = new Map<string, number[]>();
  for (const partition of partitions) {
    const [topic, topicPartition] = topicPartitionOf(layout, partition);
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), topicPartition]);
  }
  const deadline = Date.now() + source.transactionTimeoutMs + 10_000;
  let listed: Awaited<ReturnType<Admin['listConsumerGroupOffsets']>>;
  for (let attempt = 0; ; attempt++) {
    try {
      listed = await source.admin.listConsumerGroupOffsets({
        groups: [{ groupId: source.groupId, topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
        requireStable: true,
      });
      break;
    } catch (error) {
      const unstable = hasApiError(error, 'UNSTABLE_OFFSET_COMMIT');
      if (!unstable || Date.now() > deadline || source.stop.aborted) throw error;
      await sleep(Math.min(500, 20 * 2 ** attempt), source.stop);
    }
  }
  const committed = new Map<number, bigint>();
  for (const group of listed) {
    for (const topic of group.topics) {
      for (const entry of topic.partitions) {
        const partition = layout.partitionFor(topic.name, entry.partitionIndex);
        if (partition !== undefined && entry.committedOffset >= 0n) committed.set(partition, entry.committedOffset);
      }
    }
  }
  for (const partition of partitions) {
    const offset = committed.get(partition);
    if (offset !== undefined) positions.set(partition, offset);
    else
      positions.set(partition, source.options.start === 'end' ? await source.log.lastStable(...topicPartitionOf(layout, partition)) : 0n);
  }
  return positions;
}

/** A stand-in for a consumed message: TxnOffsetCommit needs only its topic, partition, offset and group metadata. */
export function offsetMessage(topic: string, partition: number, offset: bigint, metadata: Record<string, unknown>): Message {
  const empty = Buffer.alloc(0);
  return {
    topic,
    partition,
    offset,
    key: empty,
    value: empty,
    headers: new Map(),
    timestamp: 0n,
    metadata,
    commit: () => undefined,
    toJSON: () => ({ key: empty, value: empty, headers: [], topic, partition, timestamp: '0', offset: String(offset), metadata }),
  };
}
