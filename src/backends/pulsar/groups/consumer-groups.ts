/**
 * Native consumer groups on Pulsar for `store.consume`: each consumer name of a group is a
 * Failover consumer of the durable subscription `cg=<group>` on every events partition (and on
 * the group's redrive topic), so the broker makes one member active per partition and it gets
 * that partition's entries in order. Acks go to the subscription's cursor; an entry carrying
 * several events is acked once all of them are settled. Design: docs/architecture/pulsar.md.
 */
import type { ConsumerGroupDriver, ConsumerGroupPartition, DeadLetter, Delivery } from '../../../core/driver.ts';
import { InvalidArgumentError, StoreClosedError } from '../../../core/errors.ts';
import type { PulsarAdmin } from '../admin.ts';
import type { PulsarClient } from '../client/client.ts';
import type { Consumer } from '../client/consumer.ts';
import type { PulsarLog } from '../log.ts';
import type { PulsarNames } from '../records.ts';
import { DeadLetters } from './dead-letters.ts';
import { GroupAdmin } from './group-admin.ts';
import { GroupState, Member, type OpenEntry, parseReceipt, type Source } from './member.ts';

export interface PulsarGroupContext {
  readonly client: PulsarClient;
  readonly admin: PulsarAdmin;
  readonly log: PulsarLog;
  readonly names: PulsarNames;
  readonly partitions: number;
  /** Topic-level TTL of each group's dead-letter topic (policies.ts), when set. */
  readonly deadLetterTtlSeconds?: number | undefined;
}

/** Entries a member's consumer may hold ahead of the reads, per source. */
const RECEIVER_QUEUE = 100;
/** How often idle members are looked for. */
const IDLE_CHECK_MS = 200;

export class PulsarConsumerGroups implements ConsumerGroupDriver {
  readonly #ctx: PulsarGroupContext;
  readonly #admin: GroupAdmin;
  readonly #letters: DeadLetters;
  readonly #members = new Map<string, Member>();
  readonly #bySerial = new Map<number, Member>();
  readonly #joining = new Map<string, Promise<Member>>();
  readonly #states = new Map<string, GroupState>();
  #serial = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(ctx: PulsarGroupContext) {
    this.#ctx = ctx;
    this.#admin = new GroupAdmin(ctx, ctx.names, ctx.partitions);
    this.#letters = new DeadLetters(ctx, this.#admin);
  }

  ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    return this.#admin.ensureGroup(group, start);
  }

  /**
   * No `readPending` or `claimIdle`: the broker delivers a member's unacked entries again to
   * whoever is active on the partition next (after a restart, a leave or a crash). `maxIdleMs`
   * is how long the member may go without reading before it leaves (its partitions go to the others).
   */
  async read(group: string, consumer: string, options: { limit: number; blockMs: number; maxIdleMs: number }): Promise<Delivery[]> {
    const member = await this.#member(group, consumer);
    member.idleLimitMs = Math.max(1, options.maxIdleMs);
    member.reading = true;
    try {
      const state = this.#state(group);
      let out = await member.take(options.limit, state);
      if (out.length === 0 && options.blockMs > 0 && !member.closed) {
        await member.wait(options.blockMs);
        out = await member.take(options.limit, state);
      }
      return out;
    } finally {
      member.reading = false;
      member.lastActive = Date.now();
    }
  }

  async ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    for (const delivery of deliveries) {
      const found = this.#settle(group, delivery);
      if (found && found.entry.pending.size === 0) {
        await found.entry.source.consumer.ackAndWait([found.entry.id]);
        this.#finish(group, found.member, found.entry);
      }
    }
  }

  async deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    const found = this.#find(group, delivery);
    if (!found) return; // its member left: whoever gets the entry next delivers (and judges) the event again
    const { member, entry, index } = found;
    const last = entry.pending.size === 1 && entry.pending.has(index);
    await this.#letters.write(group, entry, delivery, reason, last);
    this.#settle(group, delivery);
    if (last) this.#finish(group, member, entry);
  }

  listDeadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    return this.#letters.list(group, limit);
  }

  redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    return this.#letters.redrive(group, ids);
  }

  /**
   * Needs a group without consumers: this process's members leave first (a consumer still
   * running joins again on its next read, from the new position), and members of other
   * processes make it refuse, as Kafka does (their acks in hand would land on the moved cursor).
   */
  describeGroup(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    return this.#admin.describe(group);
  }

  async resetGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    await Promise.all([...this.#members.values()].filter((m) => m.group === group).map((m) => this.#leave(m)));
    await this.#admin.ensureGroup(group, 'beginning');
    const live = await this.#admin.consumers(group);
    if (live > 0) {
      throw new InvalidArgumentError(
        `cannot reset consumer group ${JSON.stringify(group)}: it has ${live} consumer(s) in other processes; stop them first`,
      );
    }
    await this.#admin.reset(group, to);
    // A replay is not a redelivery.
    this.#states.delete(group);
  }

  /** A stopped consumer's member closes its consumers at once, so the broker hands its partitions to the others. */
  async leave(group: string, consumer: string): Promise<void> {
    const member = this.#members.get(memberKey(group, consumer));
    if (member) await this.#leave(member);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#joining.values()]);
    await Promise.allSettled([...this.#members.values()].map((m) => this.#leave(m)));
    await this.#letters.close();
  }

  /** The member of the delivery's receipt and its open entry, if that membership is still here. */
  #find(group: string, delivery: Delivery): { member: Member; entry: OpenEntry; index: number } | undefined {
    const receipt = parseReceipt(delivery.receipt);
    const member = this.#bySerial.get(receipt.serial);
    if (!member || member.closed || member.group !== group) return undefined;
    member.lastActive = Date.now();
    const source = member.sources[receipt.source];
    if (!source) return undefined;
    const entry = member.open.get(`${source.kind}/${source.partition}/${receipt.id.ledgerId}:${receipt.id.entryId}`);
    return entry && { member, entry, index: receipt.index };
  }

  /** Marks the delivery's event settled in its entry (and in the group's state); the entry is found again for the caller. */
  #settle(group: string, delivery: Delivery): { member: Member; entry: OpenEntry } | undefined {
    const found = this.#find(group, delivery);
    if (!found) return undefined;
    const { entry, index } = found;
    entry.pending.delete(index);
    const state = this.#state(group);
    state.counts.delete(`${entry.key}/${index}`);
    const settled = state.settled.get(entry.key) ?? new Set<number>();
    settled.add(index);
    state.settled.set(entry.key, settled);
    return found;
  }

  /** The entry is acked as a whole: nothing of it is remembered any more. */
  #finish(group: string, member: Member, entry: OpenEntry): void {
    member.open.delete(entry.key);
    this.#state(group).settled.delete(entry.key);
  }

  #state(group: string): GroupState {
    let state = this.#states.get(group);
    if (!state) {
      state = new GroupState();
      this.#states.set(group, state);
    }
    return state;
  }

  async #member(group: string, consumer: string): Promise<Member> {
    if (this.#closed) throw new StoreClosedError();
    const key = memberKey(group, consumer);
    const existing = this.#members.get(key);
    if (existing && !existing.closed) return existing;
    let joining = this.#joining.get(key);
    if (!joining) {
      joining = this.#join(group, consumer).finally(() => this.#joining.delete(key));
      this.#joining.set(key, joining);
    }
    return joining;
  }

  /** Subscribes a Failover consumer named `consumer` to every source of the group. */
  async #join(group: string, consumer: string): Promise<Member> {
    const { names, client, partitions } = this.#ctx;
    await this.#admin.ensureTopics(group);
    const wanted: Omit<Source, 'consumer'>[] = [
      ...Array.from({ length: partitions }, (_, p) => ({ kind: 'e' as const, partition: p, topic: names.partition(p) })),
      { kind: 'r', partition: -1, topic: names.redrive(group) },
    ];
    const subscribed = await Promise.allSettled(
      wanted.map(async (source): Promise<Source> => {
        let self: Consumer | undefined;
        const subscribedConsumer = await client.subscribe({
          topic: source.topic,
          subscription: names.subscription(group),
          type: 'Failover',
          name: consumer,
          // Only if the subscription is missing on this partition (ensureGroup made it everywhere else): never skip events.
          initialPosition: 'earliest',
          receiverQueueSize: RECEIVER_QUEUE,
          // No longer active: what is queued goes to the new active consumer too; do not hand it out here.
          onActiveChange: (active) => {
            if (!active) self?.dropQueued();
          },
        });
        self = subscribedConsumer;
        return { ...source, consumer: subscribedConsumer };
      }),
    );
    const sources = subscribed.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = subscribed.find((r) => r.status === 'rejected');
    if (failed || this.#closed) {
      await Promise.allSettled(sources.map((s) => s.consumer.close()));
      if (failed) throw failed.reason;
      throw new StoreClosedError();
    }
    const member = new Member(group, consumer, ++this.#serial, sources);
    this.#members.set(memberKey(group, consumer), member);
    this.#bySerial.set(member.serial, member);
    this.#timer ??= setInterval(() => this.#leaveIdle(), IDLE_CHECK_MS);
    this.#timer.unref?.();
    return member;
  }

  /** A member that has not read for longer than its idle limit (stopped, or stuck in a handler) leaves, as a dead one would. */
  #leaveIdle(): void {
    const now = Date.now();
    for (const member of this.#members.values()) {
      if (!member.reading && now - member.lastActive > member.idleLimitMs) void this.#leave(member);
    }
  }

  async #leave(member: Member): Promise<void> {
    if (this.#members.get(memberKey(member.group, member.name)) === member) this.#members.delete(memberKey(member.group, member.name));
    this.#bySerial.delete(member.serial);
    await member.close();
  }
}

function memberKey(group: string, consumer: string): string {
  return `${group}\u0000${consumer}`;
}
