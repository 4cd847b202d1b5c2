// Waiting, between batches, for new events on the partitions this instance holds.
import { sleep, untilAborted } from '../../../core/sleep.ts';
import type { TopicLayout } from '../layout.ts';
import type { PartitionLog } from '../log.ts';
import type { HeldPositions } from './positions.ts';
import { topicPartitionOf } from './topic-partition.ts';

/** Returns when a held partition has records past its position, after `blockMs`, or when `stop` aborts. */
export async function waitForEvents(
  log: PartitionLog,
  layout: TopicLayout,
  held: HeldPositions,
  blockMs: number,
  stop: AbortSignal,
): Promise<void> {
  // Sparse arrays per topic: waitAny visits only the partitions this instance holds.
  const from = new Map<string, bigint[]>();
  for (const partition of held.assigned) {
    const [topic, topicPartition] = topicPartitionOf(layout, partition);
    if (!from.has(topic)) from.set(topic, []);
    from.get(topic)![topicPartition] = held.at(partition);
  }
  const wait =
    held.assigned.length === 0
      ? sleep(blockMs, stop)
      : Promise.race([...from].map(([topic, offsets]) => log.waitAny(topic, offsets, blockMs))).catch(() => sleep(blockMs, stop));
  await untilAborted(wait, stop);
}
