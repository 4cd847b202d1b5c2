import { offsetCommitV8 } from '@platformatic/kafka';
import type { Delivery } from '../../../core/driver.ts';
import { DriverError } from '../../../core/errors.ts';
import { hasApiError, KAFKA } from '../errors.ts';
import { type KafkaGroupContext, sessionTimeoutMs } from './context.ts';
import type { DeliveryCounts } from './delivery-counts.ts';
import { type Member, type PartitionState, STALE_GENERATION } from './member.ts';
import type { Membership } from './membership.ts';
import { parseReceipt } from './receipts.ts';

interface CommitEntry {
  readonly state: PartitionState;
  readonly offset: bigint;
  readonly metadata: string | null;
}

/**
 * Acks as offset commits. Offsets are per partition and contiguous, so an ack commits up to the
 * lowest offset still in flight (or the fetch position when none is), with the member's
 * generation; the metadata carries the head's delivery count (`ef:<offset>:<deliveries>`, read
 * back by offsets.ts).
 */
export class OffsetCommits {
  readonly #ctx: KafkaGroupContext;
  readonly #membership: Membership;
  readonly #counts: DeliveryCounts;

  constructor(ctx: KafkaGroupContext, membership: Membership, counts: DeliveryCounts) {
    this.#ctx = ctx;
    this.#membership = membership;
    this.#counts = counts;
  }

  async ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    for (const delivery of deliveries) {
      const receipt = parseReceipt(delivery.receipt);
      const member = this.#membership.find(group, receipt.consumer);
      if (!member) continue; // it left the group: the partition's next owner delivers the event again
      await member.exclusive(async () => {
        member.lastActive = Date.now();
        await this.#membership.sync(member);
        const state = member.partitionBySerial(receipt.serial);
        if (!state) return;
        removeOffset(state.inFlight, receipt.offset);
        this.#counts.forget(group, state, receipt.offset);
        const target = state.inFlight[0] ?? state.next;
        if (target > state.committed) await this.#commitOrDrop(member, state, target);
      });
    }
  }

  /**
   * Records in the committed offset's metadata how many times each partition's head (the first
   * unprocessed record) has been delivered, so a crash or rebalance counts as a delivery for the
   * next owner; and commits the fetch position of a partition with nothing in flight, which a
   * read moved past markers and aborted records (no ack would), so a caught-up group commits
   * the partition's end and Kafka tools show lag 0. One OffsetCommit for all partitions; best effort.
   */
  async recordHeads(member: Member): Promise<void> {
    const entries: CommitEntry[] = [];
    for (const state of member.parts.values()) {
      const metadata = this.#headMetadata(member.group, state, state.committed);
      if (metadata !== null && metadata !== state.recorded) entries.push({ state, offset: state.committed, metadata });
      else if (state.inFlight.length === 0 && state.next > state.committed) entries.push({ state, offset: state.next, metadata: null });
    }
    if (entries.length === 0) return;
    await this.#commit(member, entries).catch(() => undefined);
  }

  #headMetadata(group: string, state: PartitionState, offset: bigint): string | null {
    if (state.inFlight[0] !== offset) return null;
    const deliveries = this.#counts.get(group, state, offset);
    return deliveries === undefined ? null : `ef:${offset}:${deliveries}`;
  }

  /** Commits an ack; a member that lost the partition (stale generation) drops it instead. */
  async #commitOrDrop(member: Member, state: PartitionState, target: bigint): Promise<void> {
    const deadline = Date.now() + sessionTimeoutMs(this.#ctx);
    for (;;) {
      if (!member.owns(state)) return;
      try {
        await this.#commit(member, [{ state, offset: target, metadata: this.#headMetadata(member.group, state, target) }]);
        return;
      } catch (error) {
        if (!hasApiError(error, ...STALE_GENERATION)) throw error;
        if (Date.now() > deadline) return; // still not back in the group: the next owner redelivers
        await this.#membership.awaitRejoin(member);
      }
    }
  }

  /**
   * OffsetCommit with the member's generation, so a member that lost the partition in a
   * rebalance cannot move it back (the library's own commit() rejoins and retries with the new one).
   */
  async #commit(member: Member, entries: CommitEntry[]): Promise<void> {
    const coordinator = member.consumer.coordinatorId ?? (await member.consumer.findGroupCoordinator());
    const metadata = await member.admin.metadata({ topics: [this.#ctx.names.events] });
    const broker = metadata.brokers.get(coordinator);
    if (!broker) throw new DriverError(KAFKA, `no broker for the coordinator of group ${member.consumer.groupId}`);
    const connection = await member.admin.connections.get(broker);
    const byTopic = new Map<
      string,
      { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: string | null }[]
    >();
    for (const entry of entries) {
      const list = byTopic.get(entry.state.topic) ?? [];
      list.push({
        partitionIndex: entry.state.partition,
        committedOffset: entry.offset,
        committedLeaderEpoch: -1,
        committedMetadata: entry.metadata,
      });
      byTopic.set(entry.state.topic, list);
    }
    await offsetCommitV8.api.async(
      connection,
      member.consumer.groupId,
      member.generation,
      member.memberId,
      null,
      [...byTopic].map(([name, partitions]) => ({ name, partitions })),
    );
    for (const entry of entries) {
      if (entry.offset > entry.state.committed) entry.state.committed = entry.offset;
      entry.state.recorded = entry.metadata;
    }
  }
}

function removeOffset(list: bigint[], offset: bigint): void {
  const index = list.indexOf(offset);
  if (index >= 0) list.splice(index, 1);
}
