import type { Delivery, StoredEvent } from '../../../core/driver.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Consumer } from '../client/consumer.ts';
import type { MessageId } from '../client/message-id.ts';
import { decodeCommit } from '../records.ts';
import { redrivenEvent } from './letters.ts';

/** One topic a member reads: an events partition (`e`, store partition p) or the group's redrive topic (`r`). */
export interface Source {
  readonly kind: 'e' | 'r';
  /** The store partition; -1 for the redrive topic. */
  readonly partition: number;
  readonly topic: string;
  readonly consumer: Consumer;
}

/** An entry taken from a source whose events are not all settled (acked or dead-lettered) yet. */
export interface OpenEntry {
  readonly key: string;
  readonly source: Source;
  readonly id: MessageId;
  /** Indexes (in the entry) of its events not settled yet. */
  readonly pending: Set<number>;
}

/**
 * What the members of a group in this process share: delivery counts per event (forgotten once
 * settled) and the events already settled of entries not yet acked as a whole, so an entry that
 * comes back (a member left, a Failover switch) hands out only the rest.
 */
export class GroupState {
  readonly counts = new Map<string, number>();
  readonly settled = new Map<string, Set<number>>();
}

/** One consumer name of a group in this process: a Failover consumer on every events partition and on the redrive topic. */
export class Member {
  readonly group: string;
  readonly name: string;
  /** Identity of this membership: receipts of an earlier one (the consumer left and came back) no longer ack. */
  readonly serial: number;
  readonly sources: readonly Source[];
  readonly open = new Map<string, OpenEntry>();
  /** Deliveries taken from entries but not handed out yet (an entry holds more events than a read asked for). */
  readonly buffer: Delivery[] = [];
  lastActive = Date.now();
  idleLimitMs = 30_000;
  reading = false;
  closed = false;
  #rotate = 0;

  constructor(group: string, name: string, serial: number, sources: readonly Source[]) {
    this.group = group;
    this.name = name;
    this.serial = serial;
    this.sources = sources;
  }

  /**
   * Up to `limit` deliveries from what the consumers have queued, starting one source further
   * each call so no partition starves. Entries without events (claim markers, messages eventfold
   * did not write) are acked on the way, and waited for: they count as processed.
   */
  async take(limit: number, state: GroupState): Promise<Delivery[]> {
    const empty = new Map<Source, MessageId[]>();
    const n = this.sources.length;
    const first = this.#rotate++ % n;
    for (let step = 0; step < n && this.buffer.length < limit; step++) {
      const index = (first + step) % n;
      const source = this.sources[index]!;
      while (this.buffer.length < limit) {
        const message = source.consumer.tryReceive();
        if (message === undefined) break;
        const key = entryKey(source, message.messageId);
        if (this.open.has(key)) continue; // delivered again (a reconnect) while in hand
        const events: StoredEvent[] =
          source.kind === 'e' ? decodeCommit(message, source.partition) : [redrivenEvent(message)].filter((e) => e !== undefined);
        const settled = state.settled.get(key);
        const pending = events.map((_, i) => i).filter((i) => !settled?.has(i));
        if (pending.length === 0) {
          empty.set(source, [...(empty.get(source) ?? []), message.messageId]);
          state.settled.delete(key);
          continue;
        }
        this.open.set(key, { key, source, id: message.messageId, pending: new Set(pending) });
        for (const i of pending) {
          const deliveries = (state.counts.get(`${key}/${i}`) ?? 0) + 1;
          state.counts.set(`${key}/${i}`, deliveries);
          this.buffer.push({ event: events[i]!, deliveries, receipt: receiptOf(this.serial, index, message.messageId, i) });
        }
      }
    }
    await Promise.all([...empty].map(([source, ids]) => source.consumer.ackAndWait(ids)));
    return this.buffer.splice(0, limit);
  }

  /** Resolves once any consumer has a message queued, or after `ms`. */
  async wait(ms: number): Promise<void> {
    await Promise.race(this.sources.map((s) => s.consumer.whenQueued(ms)));
  }

  /** Closes the consumers: the broker hands this member's partitions to the others, unacked entries included. */
  async close(): Promise<void> {
    this.closed = true;
    this.buffer.length = 0;
    this.open.clear();
    await Promise.allSettled(this.sources.map((s) => s.consumer.close()));
  }
}

export function entryKey(source: Pick<Source, 'kind' | 'partition'>, id: MessageId): string {
  return `${source.kind}/${source.partition}/${id.ledgerId}:${id.entryId}`;
}

/** What a receipt names: the membership, the source (index in its sources), the entry and the event's index in it. */
export interface Receipt {
  readonly serial: number;
  readonly source: number;
  readonly id: MessageId;
  readonly index: number;
}

/** `<membership serial>|<source index>|<ledger>|<entry>|<event index>`. */
function receiptOf(serial: number, source: number, id: MessageId, index: number): string {
  return `${serial}|${source}|${id.ledgerId}|${id.entryId}|${index}`;
}

export function parseReceipt(value: string): Receipt {
  const parts = value.split('|');
  if (parts.length !== 5 || !parts.every((p) => /^\d+$/.test(p))) {
    throw new InvalidArgumentError(`not a pulsar delivery receipt: ${JSON.stringify(value)}`);
  }
  const [serial, source, ledger, entry, index] = parts as [string, string, string, string, string];
  return {
    serial: Number(serial),
    source: Number(source),
    id: { ledgerId: BigInt(ledger), entryId: BigInt(entry), partition: -1, batchIndex: -1 },
    index: Number(index),
  };
}
