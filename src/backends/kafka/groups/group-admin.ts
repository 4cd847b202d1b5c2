import { Admin } from '@platformatic/kafka';
import type { ConsumerGroupPartition } from '../../../core/driver.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { ensureTopic, KEEP_FOREVER } from '../admin.ts';
import { hasApiError } from '../errors.ts';
import { PartitionLog } from '../log.ts';
import type { KafkaGroupContext, Lifecycle } from './context.ts';
import { committedOffsets, offsetBoundaries, type TopicPartitions } from './offsets.ts';

/** The admin client the groups share (members have their own), with a reader of the DLQs on it. */
export interface SharedClient {
  readonly admin: Admin;
  readonly log: PartitionLog;
  /** DLQ topics whose partitions `log` has described. */
  readonly described: Set<string>;
}

/** A group's topics and offsets: created on first use, moved by a reset. */
export class GroupAdmin {
  readonly #ctx: KafkaGroupContext;
  readonly #lifecycle: Lifecycle;
  #shared: Promise<SharedClient> | undefined;

  constructor(ctx: KafkaGroupContext, lifecycle: Lifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  async sharedClient(): Promise<SharedClient> {
    this.#lifecycle.throwIfClosed();
    this.#shared ??= Promise.resolve().then(() => {
      const admin = new Admin(this.#ctx.base('groups'));
      return { admin, log: new PartitionLog(admin), described: new Set<string>() };
    });
    return this.#shared;
  }

  /** Creates the group's DLQ and redrive topics, and commits `start` for every partition the group has no offset for. */
  async ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    const names = this.#ctx.names;
    const groupId = names.consumerGroup(group);
    const { admin } = await this.sharedClient();
    await this.#createTopic(admin, names.deadLetters(group));
    await this.#createTopic(admin, names.redrive(group));
    const eventTopics = this.#eventTopics();
    const committed = await committedOffsets(admin, groupId, [...eventTopics, { topic: names.redrive(group), partitions: [0] }]);
    const missing = eventTopics
      .map(({ topic, partitions }) => ({
        topic,
        partitions: partitions.filter((partition) => committed.get(`${topic}/${partition}`) === undefined),
      }))
      .filter((uncommitted) => uncommitted.partitions.length > 0);
    const missingRedrive = committed.get(`${names.redrive(group)}/0`) === undefined;
    if (missing.length === 0 && !missingRedrive) return;
    const topics = [];
    for (const { topic, partitions } of missing)
      topics.push({ name: topic, partitionOffsets: await offsetBoundaries(admin, topic, partitions, start) });
    if (missingRedrive) topics.push({ name: names.redrive(group), partitionOffsets: [{ partition: 0, offset: 0n }] });
    try {
      await admin.alterConsumerGroupOffsets({ groupId, topics });
    } catch (error) {
      // Another process created the group (and joined it) first: fine if its offsets are there now.
      const again = await committedOffsets(admin, groupId, missing);
      if (again.size < missing.reduce((count, uncommitted) => count + uncommitted.partitions.length, 0)) throw error;
    }
  }

  /**
   * Moves the group's events offsets to `to`. Kafka moves the offsets of an empty group only:
   * refused with `InvalidArgumentError` while members of other processes are in the group.
   */
  /** The group's committed offsets: each partition's position is the event before its committed (next) offset. */
  async describe(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    const { admin } = await this.sharedClient();
    const committed = await committedOffsets(admin, this.#ctx.names.consumerGroup(group), this.#eventTopics());
    if (committed.size === 0) return undefined;
    const out: ConsumerGroupPartition[] = [];
    for (const { topic, partitions } of this.#eventTopics()) {
      for (const p of partitions) {
        const partition = this.#ctx.layout.partitionFor(topic, p);
        if (partition === undefined) continue;
        const next = committed.get(`${topic}/${p}`)?.offset;
        out.push({ partition, position: next === undefined || next === 0n ? undefined : next - 1n, pending: undefined });
      }
    }
    return out.sort((a, b) => a.partition - b.partition);
  }

  async resetOffsets(group: string, to: 'beginning' | 'end'): Promise<void> {
    const { admin } = await this.sharedClient();
    const groupId = this.#ctx.names.consumerGroup(group);
    const described = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
    const live = described?.members.size ?? 0;
    const refuse = (cause?: unknown): InvalidArgumentError => {
      const error = new InvalidArgumentError(
        `cannot reset consumer group ${JSON.stringify(group)}: it has ${live || 'live'} member(s) in other processes; stop its consumers first (Kafka moves the offsets of an empty group only)`,
      );
      if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause });
      return error;
    };
    if (live > 0) throw refuse();
    const topics = [];
    for (const { topic, partitions } of this.#eventTopics())
      topics.push({ name: topic, partitionOffsets: await offsetBoundaries(admin, topic, partitions, to) });
    try {
      await admin.alterConsumerGroupOffsets({ groupId, topics });
    } catch (error) {
      if (hasApiError(error, 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'NON_EMPTY_GROUP', 'ILLEGAL_GENERATION')) throw refuse(error);
      throw error;
    }
  }

  async close(): Promise<void> {
    const shared = this.#shared;
    this.#shared = undefined;
    if (shared)
      await shared
        .then(
          (client) => client.admin.close(),
          () => undefined,
        )
        .catch(() => undefined);
  }

  async #createTopic(admin: Admin, topic: string): Promise<void> {
    await ensureTopic(admin, { topic, partitions: 1, replicas: this.#ctx.replicationFactor, configs: KEEP_FOREVER });
  }

  /** Every events topic of the store (layout.ts) with its Kafka partitions. */
  #eventTopics(): TopicPartitions[] {
    return this.#ctx.layout.byTopic().map(({ topic, partitions }) => ({ topic, partitions: partitions.map(({ partition }) => partition) }));
  }
}
