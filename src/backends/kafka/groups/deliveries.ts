import type { Delivery, StoredEvent } from '../../../core/driver.ts';
import { sleep } from '../../../core/sleep.ts';
import type { LogRecord } from '../log.ts';
import { storedEvent } from '../records.ts';
import type { OffsetCommits } from './commits.ts';
import type { KafkaGroupContext } from './context.ts';
import type { DeliveryCounts } from './delivery-counts.ts';
import { redrivenPosition } from './letter-records.ts';
import type { Member, PartitionState } from './member.ts';
import type { Membership } from './membership.ts';
import { deliveryReceipt } from './receipts.ts';

/**
 * Reads: each member fetches its own partitions (read_committed, through PartitionLog on its own
 * client, so a long-poll never delays the heartbeats or another member) and counts every delivery.
 */
export class Deliveries {
  readonly #ctx: KafkaGroupContext;
  readonly #membership: Membership;
  readonly #counts: DeliveryCounts;
  readonly #commits: OffsetCommits;

  constructor(ctx: KafkaGroupContext, membership: Membership, counts: DeliveryCounts, commits: OffsetCommits) {
    this.#ctx = ctx;
    this.#membership = membership;
    this.#counts = counts;
    this.#commits = commits;
  }

  /**
   * Nothing is pending per consumer name on Kafka (the uncommitted tail of a partition is what
   * its next owner reads), so there is no `readPending`; `maxIdleMs` is how long the member may
   * go without reading before it leaves the group.
   */
  async read(group: string, consumer: string, options: { limit: number; blockMs: number; maxIdleMs: number }): Promise<Delivery[]> {
    this.#membership.setIdleLimit(group, consumer, options.maxIdleMs);
    const member = await this.#membership.member(group, consumer);
    member.lastActive = Date.now();
    return member.exclusive(async () => {
      try {
        await this.#membership.sync(member);
        let out = await this.#collect(member, options.limit);
        if (out.length === 0 && options.blockMs > 0 && !member.closed) {
          await this.#wait(member, options.blockMs);
          await this.#membership.sync(member);
          out = await this.#collect(member, options.limit);
        }
        await this.#commits.recordHeads(member);
        return out;
      } finally {
        member.lastActive = Date.now();
      }
    });
  }

  /** Up to `limit` deliveries from the member's partitions, starting one further each call so no partition starves. */
  async #collect(member: Member, limit: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    const states = [...member.parts.values()];
    if (states.length === 0) return out;
    const first = member.rotate++ % states.length;
    for (let step = 0; step < states.length && out.length < limit; step++) {
      const state = states[(first + step) % states.length]!;
      for (;;) {
        const at = state.next;
        const page = await member.log.fetch(state.topic, state.partition, at);
        if (page.logStart > at) {
          state.next = page.logStart;
          continue;
        }
        let all = true;
        for (const record of page.records) {
          if (out.length >= limit) {
            all = false;
            break;
          }
          state.next = record.offset + 1n;
          const event = toEvent(state, record);
          if (!event) continue; // not written by eventfold: processed by skipping it
          const deliveries = this.#counts.increment(member.group, state, record.offset);
          state.inFlight.push(record.offset);
          out.push({ event, deliveries, receipt: deliveryReceipt(state, member.name, record.offset) });
        }
        // Past markers and aborted batches too, which no read_committed reader ever sees.
        if (all && page.next > state.next) state.next = page.next;
        if (!all || out.length >= limit || page.next <= at) break;
        if (!page.fromCache && state.next >= page.lastStable) break;
      }
    }
    return out;
  }

  /** Long-polls the member's partitions (or just waits, when it has none) for up to `blockMs`. */
  async #wait(member: Member, blockMs: number): Promise<void> {
    const from = new Map<string, bigint[]>();
    for (const state of member.parts.values()) {
      if (state.kind !== 'e') continue;
      const offsets = from.get(state.topic) ?? [];
      // A sparse array: waitAny polls only the partitions it holds.
      offsets[state.partition] = state.next;
      from.set(state.topic, offsets);
    }
    if (from.size === 0) {
      await sleep(Math.min(blockMs, 200));
      return;
    }
    // The redrive partition is not long-polled: it is looked at on every read, so at most one
    // `blockMs` late. Never longer than a heartbeat, so a rebalance is picked up quickly.
    const wait = Math.min(blockMs, this.#ctx.options?.heartbeatIntervalMs ?? 1000);
    await Promise.race([...from].map(([topic, offsets]) => member.log.waitAny(topic, offsets, wait))).catch(() =>
      sleep(Math.min(blockMs, 200)),
    );
  }
}

/** The event of a record; undefined for a record eventfold did not write. */
function toEvent(state: PartitionState, record: LogRecord): StoredEvent | undefined {
  const event = storedEvent(record, state.store);
  if (!event || state.kind === 'e') return event;
  // A redriven copy: the event's position is where it sits in the log.
  const position = redrivenPosition(record);
  return position && { ...event, position };
}
