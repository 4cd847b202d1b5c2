/**
 * Native Kafka consumer groups for `store.consume` (competing consumers with dead letters): each
 * consumer name of a group is a member of the Kafka consumer group `<prefix>.cg:<group>`. This
 * class implements ConsumerGroupDriver by delegating to the parts in this folder; how membership,
 * acks, delivery counts, dead letters and redrive work: docs/architecture/kafka.md#consumer-groups.
 */
import type { ConsumerGroupDriver, ConsumerGroupPartition, DeadLetter, Delivery } from '../../../core/driver.ts';
import { OffsetCommits } from './commits.ts';
import { type KafkaGroupContext, Lifecycle } from './context.ts';
import { DeadLetters } from './dead-letters.ts';
import { Deliveries } from './deliveries.ts';
import { DeliveryCounts } from './delivery-counts.ts';
import { GroupAdmin } from './group-admin.ts';
import { Membership } from './membership.ts';
import { GroupTransactions } from './transactions.ts';

export type { KafkaConsumerGroupOptions, KafkaGroupContext } from './context.ts';

export class KafkaConsumerGroups implements ConsumerGroupDriver {
  readonly #lifecycle = new Lifecycle();
  readonly #counts = new DeliveryCounts();
  readonly #membership: Membership;
  readonly #admin: GroupAdmin;
  readonly #transactions: GroupTransactions;
  readonly #commits: OffsetCommits;
  readonly #deliveries: Deliveries;
  readonly #deadLetters: DeadLetters;

  constructor(ctx: KafkaGroupContext) {
    this.#membership = new Membership(ctx, this.#lifecycle);
    this.#admin = new GroupAdmin(ctx, this.#lifecycle);
    this.#transactions = new GroupTransactions(ctx, this.#lifecycle);
    this.#commits = new OffsetCommits(ctx, this.#membership, this.#counts);
    this.#deliveries = new Deliveries(ctx, this.#membership, this.#counts, this.#commits);
    this.#deadLetters = new DeadLetters(ctx, this.#membership, this.#counts, this.#admin, this.#transactions);
  }

  ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    return this.#admin.ensureGroup(group, start);
  }

  /** No `readPending` or `claimIdle`: Kafka redelivers an uncommitted tail and rebalances a dead member's partitions by itself. */
  read(group: string, consumer: string, options: { limit: number; blockMs: number; maxIdleMs: number }): Promise<Delivery[]> {
    return this.#deliveries.read(group, consumer, options);
  }

  ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    return this.#commits.ack(group, deliveries);
  }

  deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    return this.#deadLetters.deadLetter(group, delivery, reason);
  }

  listDeadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    return this.#deadLetters.list(group, limit);
  }

  redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    return this.#deadLetters.redrive(group, ids);
  }

  /**
   * Needs an empty group: this process's members leave first (a consumer still running rejoins
   * on its next read and continues from the new position).
   */
  describeGroup(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    return this.#admin.describe(group);
  }

  async resetGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    await this.#membership.leaveGroup(group);
    await this.#admin.resetOffsets(group, to);
    // A replay is not a redelivery.
    this.#counts.reset(group);
  }

  /** A stopped consumer leaves the group at once, so the coordinator hands its partitions to the others. */
  leave(group: string, consumer: string): Promise<void> {
    return this.#membership.leave(group, consumer);
  }

  /** Leaves every group and closes every client. */
  async close(): Promise<void> {
    this.#lifecycle.closed = true;
    await this.#membership.close();
    await this.#transactions.close();
    await this.#admin.close();
  }
}
