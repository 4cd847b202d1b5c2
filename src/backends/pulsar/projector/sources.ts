// The projector's Failover consumers, one per events partition, and how far the group has acknowledged each.
import { randomUUID } from 'node:crypto';
import type { PulsarAdmin } from '../admin.ts';
import type { PulsarClient } from '../client/client.ts';
import type { Consumer } from '../client/consumer.ts';
import { compareMessageIds, type MessageId } from '../client/message-id.ts';
import type { PulsarNames } from '../records.ts';

/** One events partition as this instance reads it. */
export interface Source {
  readonly partition: number;
  readonly topic: string;
  readonly consumer: Consumer;
  /** Set on subscribing and each time the broker makes this consumer the active one: fence before reading. */
  needsFence: boolean;
}

/** Entries the broker may push ahead of a batch, per partition. */
const RECEIVER_QUEUE = 500;

/**
 * Subscribes a Failover consumer to the group's subscription on every events partition. The
 * broker makes one consumer of the subscription active per partition (and another when it
 * goes); consumer names are random per process, so instances share the partitions out.
 */
export async function subscribeAll(
  client: PulsarClient,
  names: PulsarNames,
  partitions: number,
  subscription: string,
  start: 'beginning' | 'end',
): Promise<Source[]> {
  const name = `projector-${randomUUID()}`;
  const subscribed = await Promise.allSettled(
    Array.from({ length: partitions }, async (_, partition): Promise<Source> => {
      let source: Source | undefined;
      const consumer = await client.subscribe({
        topic: names.partition(partition),
        subscription,
        type: 'Failover',
        name,
        // Only when the subscription is new on this partition.
        initialPosition: start === 'end' ? 'latest' : 'earliest',
        receiverQueueSize: RECEIVER_QUEUE,
        onActiveChange: (active) => {
          if (!source) return;
          // No longer active: what is queued goes to the new active consumer; never hand it out here.
          if (!active) source.consumer.dropQueued();
          else source.needsFence = true;
        },
      });
      source = { partition, topic: names.partition(partition), consumer, needsFence: true };
      return source;
    }),
  );
  const sources = subscribed.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = subscribed.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(sources.map((s) => s.consumer.close()));
    throw failed.reason;
  }
  return sources;
}

/** The last entry of each partition now (undefined: empty). */
export async function partitionHeads(sources: readonly Source[]): Promise<Map<number, MessageId>> {
  const heads = new Map<number, MessageId>();
  for (const source of sources) {
    const last = await source.consumer.getLastMessageId();
    // -1:-1 (an empty partition) sorts before every real id.
    if (compareMessageIds(last, { ledgerId: 0n, entryId: 0n, partition: -1, batchIndex: -1 }) >= 0) heads.set(source.partition, last);
  }
  return heads;
}

/**
 * Whether the subscription has everything up to `head` acknowledged: its cursor's mark-delete
 * position (all before it acked) is at or past it. Not "this instance committed `head`": the
 * entries another transaction's pending acks hold are skipped by the dispatcher, so a later
 * entry can be committed before them.
 */
export async function reached(admin: PulsarAdmin, source: Source, subscription: string, head: MessageId): Promise<boolean> {
  const stats = await admin.json<{ cursors?: Record<string, { markDeletePosition?: string }> }>(
    `persistent/${source.topic.slice('persistent://'.length)}/internalStats`,
  );
  const cursor = stats.cursors?.[subscription] ?? stats.cursors?.[encodeURIComponent(subscription)];
  const match = /^(-?\d+):(-?\d+)$/.exec(cursor?.markDeletePosition ?? '');
  if (!match) return false;
  // `<ledger>:-1` (the cursor moved to a new ledger) is past every entry of the older ones.
  const ledgerId = BigInt(match[1]!);
  const entryId = BigInt(match[2]!);
  if (ledgerId < 0n) return false;
  return ledgerId > head.ledgerId || (ledgerId === head.ledgerId && entryId >= head.entryId);
}
