// The projector's consumer-group membership: the consumer, and what the current generation assigns it.
import { type BaseOptions, Consumer } from '@platformatic/kafka';
import { DriverError } from '../../../core/errors.ts';
import { KAFKA } from '../errors.ts';
import type { TopicLayout } from '../layout.ts';

export interface GroupConsumerOptions {
  readonly group: string;
  /** The projector's Kafka consumer group. */
  readonly groupId: string;
  /** Static membership: a restarted instance takes its partitions back at once. */
  readonly instance: string;
  readonly sessionTimeoutMs: number;
  /** Gets the failures of background rejoins. */
  readonly onError: (error: unknown) => void;
}

/** A consumer of the group tracking every events topic of `layout`, not joined yet. */
export function groupConsumer(client: BaseOptions, layout: TopicLayout, options: GroupConsumerOptions): Consumer {
  const consumer = new Consumer({
    ...client,
    clientId: `eventfold-projector-${options.group}`,
    groupId: options.groupId,
    groupInstanceId: options.instance,
    sessionTimeout: options.sessionTimeoutMs,
    rebalanceTimeout: options.sessionTimeoutMs,
    heartbeatInterval: Math.max(100, Math.floor(options.sessionTimeoutMs / 5)),
  });
  // A failed background rejoin is emitted as 'error': without a listener it would crash the process.
  consumer.on('error', (error: unknown) => options.onError(error));
  for (const { topic } of layout.topics) consumer.topics.track(topic);
  return consumer;
}

/** The consumer's generation, member id and assignment, as of now. */
export interface GroupMember {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string | null;
  readonly coordinatorId: number | null;
  /** Store partitions assigned, ascending. */
  readonly partitions: number[];
  /** Generation, member and partitions in one string: positions are loaded once per value. */
  readonly membership: string;
}

export function currentMember(consumer: Consumer, layout: TopicLayout): GroupMember {
  const { groupId, generationId, memberId, coordinatorId } = consumer;
  // Store partitions (a topic per category: see layout.ts).
  const partitions = (consumer.assignments ?? [])
    .flatMap((assignment) => assignment.partitions.map((partition) => layout.partitionFor(assignment.topic, partition)))
    .filter((partition): partition is number => partition !== undefined)
    .sort((left, right) => left - right);
  return { groupId, generationId, memberId, coordinatorId, partitions, membership: `${generationId}/${memberId}/${partitions.join(',')}` };
}

/** The group metadata each TxnOffsetCommit carries (KIP-447); throws when the consumer is not a member. */
export function commitMetadata(member: GroupMember, group: string): Record<string, unknown> {
  if (member.coordinatorId === null || member.memberId === null) {
    throw new DriverError(KAFKA, `projector "${group}" is not a member of its group`);
  }
  const { groupId, generationId, memberId, coordinatorId } = member;
  return { consumer: { groupId, generationId, memberId, coordinatorId } };
}
