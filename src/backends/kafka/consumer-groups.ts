import { randomUUID } from 'node:crypto';
import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  ListOffsetTimestamps,
  offsetCommitV8,
  Producer,
  type BaseOptions,
} from '@platformatic/kafka';
import type { ConsumerGroupDriver, DeadLetter, Delivery, StoredEvent } from '../../core/driver.ts';
import { DriverError, InvalidArgumentError, StoreClosedError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import { ensureTopic, KEEP_FOREVER } from './admin.ts';
import { memberProtocols, stickyAssigner } from './assignor.ts';
import { hasApiError, KAFKA as NAME } from './errors.ts';
import type { TopicLayout } from './layout.ts';
import { PartitionLog, type LogRecord } from './log.ts';
import { eventRecord, storedEvent, type OutgoingRecord } from './records.ts';
import type { KafkaNames } from './topics.ts';

/** Membership timings of `store.consume`'s Kafka group members. */
export interface KafkaConsumerGroupOptions {
  /**
   * Session timeout of a member: a member whose process died (no heartbeats) is removed from
   * the group after this long, and its partitions go to the others. Default 10000 ms; the
   * broker's `group.min.session.timeout.ms` (6000 ms by default) is the floor.
   */
  readonly sessionTimeoutMs?: number;
  /** Heartbeat interval: also how soon live members notice a rebalance. Default 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** How long the coordinator waits for the live members to rejoin in a rebalance. Default 30000 ms. */
  readonly rebalanceTimeoutMs?: number;
}

export interface KafkaGroupContext {
  readonly names: KafkaNames;
  /** The store's events topics and how their partitions map to store partitions. */
  readonly layout: TopicLayout;
  readonly replicationFactor: number;
  /** Base options of a new client (brokers, TLS, retries…) with this role in its client id. */
  base(role: string): BaseOptions;
  readonly options?: KafkaConsumerGroupOptions | undefined;
}

/** Where a partition's records come from: the store's log, or the group's redriven dead letters. */
type Kind = 'e' | 'r';

interface PartitionState {
  readonly kind: Kind;
  readonly topic: string;
  readonly partition: number;
  /** Store partition (events topics: see layout.ts); the Kafka partition for the redrive topic. */
  readonly store: number;
  /** Identity of this ownership: receipts of an earlier one (before a rebalance) no longer ack. */
  readonly serial: number;
  /** Next offset to fetch. */
  next: bigint;
  /** Offset last committed to the group (the first one not processed). */
  committed: bigint;
  /** Delivered and not yet acknowledged, ascending. */
  readonly inFlight: bigint[];
  /** Deliveries of the record at `committed` recorded in the committed offset's metadata. */
  head: { offset: bigint; deliveries: number } | undefined;
  /** What the last commit recorded for the head, to skip repeating it. */
  recorded: string | null;
}

interface JoinInfo {
  readonly memberId: string;
  readonly generationId: number;
  readonly assignments: readonly { topic: string; partitions: number[] }[];
}

class Member {
  readonly group: string;
  readonly name: string;
  readonly consumer: Consumer;
  readonly admin: Admin;
  readonly log: PartitionLog;
  latest: JoinInfo | undefined;
  generation = -1;
  memberId = '';
  parts = new Map<string, PartitionState>();
  lastActive = Date.now();
  idleLimitMs = 30_000;
  rotate = 0;
  closed = false;
  error: unknown;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(group: string, name: string, consumer: Consumer, admin: Admin) {
    this.group = group;
    this.name = name;
    this.consumer = consumer;
    this.admin = admin;
    this.log = new PartitionLog(admin);
  }

  /** One operation at a time per member: reads, acks, dead letters and closing touch the same state. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }
}

const STALE = ['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'FENCED_INSTANCE_ID', 'STALE_MEMBER_EPOCH'];

/** Dead-letter headers, next to the event's own `ef-*` envelope (records.ts). */
const DL = {
  partition: 'ef-dl-partition',
  offset: 'ef-dl-offset',
  reason: 'ef-dl-reason',
  deliveries: 'ef-dl-deliveries',
  at: 'ef-dl-at',
  /** On a redrive marker (DLQ) and on a redriven copy (redrive topic): the letter's id. */
  letter: 'ef-dl-letter',
} as const;

/**
 * Native Kafka consumer groups for `store.consume` (competing consumers with dead letters).
 *
 * Members. Each consumer name of a group is a real member of the Kafka consumer group
 * `<prefix>.cg:<group>` (never a subscription's `<prefix>.<group>`: group names have no ":"),
 * subscribed to the store's events topics (every category's, layout.ts) and to the group's
 * redrive topic; the group's leader assigns partitions (balanced per topic and sticky:
 * assignor.ts) and the coordinator rebalances when members join, leave, or stop heartbeating
 * for `sessionTimeoutMs`. A partition belongs to one member at a time, so each event goes to one
 * consumer. The member joins on its first read and reads its partitions itself, read_committed,
 * through `PartitionLog` (the driver's own aborted-transaction filter) on a client of its own,
 * so a long-poll never delays the heartbeats or another member. Records eventfold did not
 * write are skipped and count as processed.
 *
 * Pending entries and `claimIdle`. Kafka has no per-message pending list: what a member was
 * handed and did not acknowledge is the uncommitted tail of its partitions, read again by
 * whoever owns the partition next (after a restart or a rebalance). So `read({ pending })` has
 * nothing extra to return, and `claimIdle` returns [] (the coordinator hands a dead member's
 * partitions over after its session timeout). The core still calls `claimIdle` every
 * `claimIdleMs / 2`, so the driver takes its `minIdleMs` as the member's max poll interval: a
 * member that neither read nor claimed for that long (its consumer was stopped, or is stuck in
 * a handler) leaves the group, as a Java consumer does after `max.poll.interval.ms`.
 * `consumer.stop()` (the core's `leave`) and `store.close()` leave at once.
 *
 * Acknowledgements. Offsets are per partition and contiguous: each partition keeps its
 * delivered-and-unacknowledged offsets, and an ack commits up to the lowest one still in flight
 * (or up to the fetch position when none is). Commits go out as OffsetCommit with the member's
 * generation, so a member that lost the partition in a rebalance cannot move it back: its ack is
 * dropped and the event is delivered again by the new owner (at least once). The library's own
 * commit() is not used because it rejoins and retries with the new generation.
 *
 * Delivery counts. Kafka keeps none. Every delivery in this process is counted per (topic,
 * partition, offset), shared by all members of the group in the process, and forgotten on ack.
 * Across processes, the committed offset's metadata records how many times the record at that
 * offset (the head: the one a crash loop is stuck on) has been delivered: it is written when the
 * head is handed out and with each ack whose new head is already in flight, so after a crash
 * or rebalance the next owner delivers it with the count + 1. Not counted across processes: the
 * other unacknowledged records of a dead member's batch (they start again at 1), and the head
 * after a dead letter (the transactional offset commit carries no metadata).
 *
 * Dead letters. `<prefix>.<group>.dlq` (one partition, kept forever) gets the event's record
 * (same key, value, `ef-*` headers) plus reason, original partition/offset, deliveries and time,
 * in one transaction with the group's offset (TxnOffsetCommit with the member's generation):
 * the letter and the ack are visible together or not at all, and a member that lost the
 * partition cannot dead-letter it. A letter's id is its DLQ offset.
 *
 * Redrive. `redrive` writes, in one transaction, a copy of each letter to
 * `<prefix>.<group>.redrive` (one partition) and a "redriven" marker to the DLQ. The group's
 * members are subscribed to the redrive topic too, so whoever owns its partition delivers the
 * original event again (its original position; the events log gets no duplicate) and acks it
 * by committing the redrive offset. `listDeadLetters` reads the whole DLQ (read_committed) and
 * drops letters that have a marker. Two concurrent redrives of the same letter may both copy it
 * (at least once).
 *
 * `resetGroup` needs an empty group (Kafka refuses to move a live group's offsets): it closes
 * this process's members of the group first (a running consumer rejoins on its next read and
 * continues from the new position) and refuses with `InvalidArgumentError` while members of
 * other processes are in the group.
 */
export class KafkaConsumerGroups implements ConsumerGroupDriver {
  readonly #ctx: KafkaGroupContext;
  readonly #members = new Map<string, Member>();
  readonly #joining = new Map<string, Promise<Member>>();
  /** Per group: deliveries in this process per `kind/partition/offset`. */
  readonly #counts = new Map<string, Map<string, number>>();
  readonly #producers = new Map<string, { producer: Producer; lock: Promise<unknown> }>();
  /** `claimIdle`'s interval for members not joined yet (applied when they join). */
  readonly #idleLimits = new Map<string, number>();
  #shared: Promise<{ admin: Admin; log: PartitionLog; described: Set<string> }> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #serial = 0;
  #closed = false;

  constructor(ctx: KafkaGroupContext) {
    this.#ctx = ctx;
  }

  get #sessionTimeoutMs(): number {
    return this.#ctx.options?.sessionTimeoutMs ?? 10_000;
  }

  async ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    const names = this.#ctx.names;
    const { admin } = await this.#sharedClient();
    await this.#createTopic(admin, names.deadLetters(group));
    await this.#createTopic(admin, names.redrive(group));
    const eventTopics = this.#eventTopics();
    const committed = await this.#committed(admin, group, [...eventTopics, { topic: names.redrive(group), partitions: [0] }]);
    const missing = eventTopics
      .map((t) => ({ topic: t.topic, partitions: t.partitions.filter((p) => committed.get(`${t.topic}/${p}`) === undefined) }))
      .filter((t) => t.partitions.length > 0);
    const missingRedrive = committed.get(`${names.redrive(group)}/0`) === undefined;
    if (missing.length === 0 && !missingRedrive) return;
    const topics = [];
    for (const t of missing) topics.push({ name: t.topic, partitionOffsets: await this.#boundaries(admin, t.topic, t.partitions, start) });
    if (missingRedrive) topics.push({ name: names.redrive(group), partitionOffsets: [{ partition: 0, offset: 0n }] });
    try {
      await admin.alterConsumerGroupOffsets({ groupId: names.consumerGroup(group), topics });
    } catch (error) {
      // Another process created the group (and joined it) first: fine if its offsets are there now.
      const again = await this.#committed(admin, group, missing);
      if (again.size < missing.reduce((n, t) => n + t.partitions.length, 0)) throw error;
    }
  }

  async read(group: string, consumer: string, options: { limit: number; blockMs: number; maxIdleMs: number }): Promise<Delivery[]> {
    // The consumer's claim interval is how long this member may go without reading (see the class comment).
    const idleLimitMs = Math.max(1, options.maxIdleMs);
    this.#idleLimits.set(memberKey(group, consumer), idleLimitMs);
    const member = await this.#member(group, consumer);
    member.idleLimitMs = idleLimitMs;
    member.lastActive = Date.now();
    return member.exclusive(async () => {
      try {
        await this.#sync(member);
        let out = await this.#collect(member, options.limit);
        if (out.length === 0 && options.blockMs > 0 && !member.closed) {
          await this.#wait(member, options.blockMs);
          await this.#sync(member);
          out = await this.#collect(member, options.limit);
        }
        await this.#recordHeads(member);
        return out;
      } finally {
        member.lastActive = Date.now();
      }
    });
  }

  async ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    for (const delivery of deliveries) {
      const r = parseReceipt(delivery.receipt);
      const member = this.#members.get(memberKey(group, r.consumer));
      if (!member) continue; // it left the group: the partition's next owner delivers the event again
      await member.exclusive(async () => {
        member.lastActive = Date.now();
        await this.#sync(member);
        const state = this.#current(member, r);
        if (!state) return;
        removeOffset(state.inFlight, r.offset);
        this.#countsOf(group).delete(countKey(state, r.offset));
        const target = state.inFlight[0] ?? state.next;
        if (target > state.committed) await this.#commitOrDrop(member, state, target);
      });
    }
  }

  async deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    const r = parseReceipt(delivery.receipt);
    const member = this.#members.get(memberKey(group, r.consumer));
    if (!member) return; // it left the group: the next owner delivers (and judges) the event again
    await member.exclusive(async () => {
      member.lastActive = Date.now();
      await this.#sync(member);
      for (let attempt = 0; ; attempt++) {
        const state = this.#current(member, r);
        if (!state) return;
        const rest = state.inFlight.filter((o) => o !== r.offset);
        const target = rest[0] ?? state.next;
        const commitTo = target > state.committed ? target : undefined;
        const letter = letterRecord(this.#ctx.names.deadLetters(group), delivery.event, reason, delivery.deliveries);
        try {
          await this.#transaction(group, async (tx) => {
            await tx.send({ messages: [letter as never] });
            if (commitTo !== undefined) {
              await tx.addConsumer(member.consumer);
              await tx.addOffset({
                topic: state.topic,
                partition: state.partition,
                offset: commitTo - 1n, // TxnOffsetCommit commits offset + 1
                metadata: {
                  consumer: {
                    groupId: member.consumer.groupId,
                    generationId: member.generation,
                    memberId: member.memberId,
                    coordinatorId: member.consumer.coordinatorId,
                  },
                },
              } as never);
            }
          });
        } catch (error) {
          // A member that lost the partition cannot commit it: the whole transaction (letter
          // included) is aborted, and the new owner delivers the event again.
          if (hasApiError(error, ...STALE) && attempt < 3) {
            await this.#awaitRejoin(member);
            continue;
          }
          throw error;
        }
        state.inFlight.splice(0, state.inFlight.length, ...rest);
        this.#countsOf(group).delete(countKey(state, r.offset));
        if (commitTo !== undefined) {
          state.committed = commitTo;
          state.recorded = null;
        }
        return;
      }
    });
  }

  async listDeadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    const letters = await this.#liveLetters(group);
    return [...letters.values()].slice(0, limit).map((l) => l.letter);
  }

  async redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const letters = await this.#liveLetters(group);
    const chosen = ids === undefined ? [...letters.values()] : ids.map((id) => letters.get(id)).filter((l) => l !== undefined);
    if (chosen.length === 0) return 0;
    const names = this.#ctx.names;
    const messages: OutgoingRecord[] = [];
    for (const { letter } of chosen) {
      const copy = eventCopy(names.redrive(group), letter.event);
      copy.headers.set(Buffer.from(DL.letter), Buffer.from(letter.id));
      messages.push(copy);
      messages.push({
        topic: names.deadLetters(group),
        partition: 0,
        key: Buffer.from(letter.id),
        value: Buffer.alloc(0),
        headers: new Map([[Buffer.from(DL.letter), Buffer.from(letter.id)]]),
        timestamp: BigInt(Date.now()),
      });
    }
    await this.#transaction(group, async (tx) => {
      await tx.send({ messages: messages as never });
    });
    return chosen.length;
  }

  async resetGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    // Our own members leave first; a consumer still running rejoins on its next read.
    await Promise.all([...this.#members.values()].filter((m) => m.group === group).map((m) => this.#closeMember(m)));
    const { admin } = await this.#sharedClient();
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
    for (const t of this.#eventTopics())
      topics.push({ name: t.topic, partitionOffsets: await this.#boundaries(admin, t.topic, t.partitions, to) });
    try {
      await admin.alterConsumerGroupOffsets({ groupId, topics });
    } catch (error) {
      if (hasApiError(error, 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'NON_EMPTY_GROUP', 'ILLEGAL_GENERATION')) throw refuse(error);
      throw error;
    }
    // A replay is not a redelivery.
    this.#counts.delete(group);
  }

  /** A stopped consumer leaves the group at once, so the coordinator hands its partitions to the others. */
  async leave(group: string, consumer: string): Promise<void> {
    await this.#joining.get(memberKey(group, consumer))?.catch(() => undefined);
    const member = this.#members.get(memberKey(group, consumer));
    if (member) await this.#closeMember(member);
  }

  /** Leaves every group and closes every client. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#joining.values()]);
    await Promise.allSettled([...this.#members.values()].map((m) => this.#closeMember(m)));
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.allSettled(
      producers.map(async (p) => {
        await p.lock.catch(() => undefined);
        await p.producer.close();
      }),
    );
    const shared = this.#shared;
    this.#shared = undefined;
    if (shared)
      await shared
        .then(
          (s) => s.admin.close(),
          () => undefined,
        )
        .catch(() => undefined);
  }

  // --- members ---------------------------------------------------------------------------

  async #member(group: string, consumer: string): Promise<Member> {
    if (this.#closed) throw new StoreClosedError();
    const key = memberKey(group, consumer);
    const existing = this.#members.get(key);
    if (existing && !existing.closed) {
      if (existing.error !== undefined) {
        // The client gave up rejoining: start over with a fresh member.
        await this.#closeMember(existing);
      } else {
        return existing;
      }
    }
    let joining = this.#joining.get(key);
    if (!joining) {
      joining = this.#join(group, consumer).finally(() => this.#joining.delete(key));
      this.#joining.set(key, joining);
    }
    return joining;
  }

  async #join(group: string, name: string): Promise<Member> {
    const names = this.#ctx.names;
    const session = this.#sessionTimeoutMs;
    const admin = new Admin(this.#ctx.base(`cg-${name}`));
    const consumer = new Consumer({
      ...this.#ctx.base(`cg-${name}`),
      groupId: names.consumerGroup(group),
      sessionTimeout: session,
      heartbeatInterval: this.#ctx.options?.heartbeatIntervalMs ?? Math.min(1000, Math.floor(session / 3)),
      rebalanceTimeout: this.#ctx.options?.rebalanceTimeoutMs ?? 30_000,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    const member = new Member(group, name, consumer, admin);
    member.idleLimitMs = this.#idleLimits.get(memberKey(group, name)) ?? 30_000;
    // Balanced per topic and sticky (assignor.ts); each join tells the leader what this member holds.
    const protocol = memberProtocols(name);
    consumer.on('consumer:group:join', (p) => {
      member.latest = { memberId: p.memberId, generationId: p.generationId ?? -1, assignments: p.assignments ?? [] };
      protocol.holding(member.latest.generationId, member.latest.assignments);
    });
    // A failed background rejoin is emitted as 'error': keep it for the next read instead of crashing.
    consumer.on('error', (error: unknown) => {
      member.error = error;
    });
    try {
      for (const t of this.#ctx.layout.topics) await member.log.describe(t.topic, this.#ctx.layout.perTopic);
      await member.log.describe(names.redrive(group), 1);
      consumer.topics.trackAll(...this.#ctx.layout.topics.map((t) => t.topic), names.redrive(group));
      await consumer.joinGroup({ protocols: protocol.protocols, partitionAssigner: stickyAssigner });
    } catch (error) {
      await closeConsumer(consumer);
      await admin.close().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await this.#closeMember(member);
      throw new StoreClosedError();
    }
    this.#members.set(memberKey(group, name), member);
    this.#startIdleTimer();
    return member;
  }

  #startIdleTimer(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const m of this.#members.values()) {
        if (!m.closed && now - m.lastActive > m.idleLimitMs) void this.#closeMember(m);
      }
    }, 100);
    this.#timer.unref();
  }

  async #closeMember(member: Member): Promise<void> {
    const key = memberKey(member.group, member.name);
    if (this.#members.get(key) === member) this.#members.delete(key);
    if (member.closed) return;
    member.closed = true;
    // After whatever the member is doing; its in-flight receipts then no longer ack.
    await member.exclusive(async () => {
      await closeConsumer(member.consumer);
      await member.admin.close().catch(() => undefined);
      member.parts.clear();
    });
  }

  /**
   * Applies the latest assignment. A partition the member held in the previous generation and
   * still holds in the next one keeps its state (nobody else owned it in between); any other is
   * started afresh from the group's committed offset.
   */
  async #sync(member: Member): Promise<void> {
    // (A member whose client gave up rejoining is replaced on its next read: see #member.)
    const latest = member.latest;
    if (!latest || (latest.generationId === member.generation && latest.memberId === member.memberId)) return;
    const consecutive = latest.memberId === member.memberId && latest.generationId === member.generation + 1;
    const names = this.#ctx.names;
    const next = new Map<string, PartitionState>();
    const fresh: { kind: Kind; topic: string; partition: number; store: number }[] = [];
    for (const a of latest.assignments) {
      const events = this.#ctx.layout.partitionFor(a.topic, 0) !== undefined;
      const kind: Kind | undefined = events ? 'e' : a.topic === names.redrive(member.group) ? 'r' : undefined;
      if (!kind) continue;
      for (const partition of a.partitions) {
        const kept = member.parts.get(`${a.topic}/${partition}`);
        if (kept && consecutive) next.set(`${a.topic}/${partition}`, kept);
        else
          fresh.push({ kind, topic: a.topic, partition, store: events ? this.#ctx.layout.partitionFor(a.topic, partition)! : partition });
      }
    }
    if (fresh.length > 0) {
      const byTopic = new Map<string, number[]>();
      for (const f of fresh) byTopic.set(f.topic, [...(byTopic.get(f.topic) ?? []), f.partition]);
      const committed = await this.#committed(
        member.admin,
        member.group,
        [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      );
      for (const f of fresh) {
        const c = committed.get(`${f.topic}/${f.partition}`);
        const offset = c?.offset ?? 0n;
        next.set(`${f.topic}/${f.partition}`, {
          ...f,
          serial: ++this.#serial,
          next: offset,
          committed: offset,
          inFlight: [],
          head: c?.head,
          recorded: c?.metadata ?? null,
        });
      }
    }
    member.parts = next;
    member.generation = latest.generationId;
    member.memberId = latest.memberId;
  }

  /** Up to `limit` deliveries from the member's partitions, starting one further each call so no partition starves. */
  async #collect(member: Member, limit: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    const states = [...member.parts.values()];
    if (states.length === 0) return out;
    const first = member.rotate++ % states.length;
    for (let i = 0; i < states.length && out.length < limit; i++) {
      const state = states[(first + i) % states.length]!;
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
          const event = this.#toEvent(state, record);
          if (!event) continue; // not written by eventfold: processed by skipping it
          const deliveries = this.#count(member.group, state, record.offset);
          state.inFlight.push(record.offset);
          out.push({ event, deliveries, receipt: receipt(state, member.name, record.offset) });
        }
        // Past markers and aborted batches too, which no read_committed reader ever sees.
        if (all && page.next > state.next) state.next = page.next;
        if (!all || out.length >= limit || page.next <= at) break;
        if (!page.fromCache && state.next >= page.lastStable) break;
      }
    }
    return out;
  }

  #toEvent(state: PartitionState, record: LogRecord): StoredEvent | undefined {
    const event = storedEvent(record, state.store);
    if (!event || state.kind === 'e') return event;
    // A redriven copy: the event's position is where it sits in the log.
    const h = new Map(record.headers.map(([k, v]) => [k?.toString('latin1'), v?.toString('latin1')] as const));
    const partition = Number(h.get(DL.partition));
    const offset = h.get(DL.offset);
    if (!Number.isInteger(partition) || offset === undefined) return undefined;
    return { ...event, position: { partition, offset: BigInt(offset) } };
  }

  #count(group: string, state: PartitionState, offset: bigint): number {
    const counts = this.#countsOf(group);
    const key = countKey(state, offset);
    const persisted = state.head?.offset === offset ? state.head.deliveries : 0;
    const n = Math.max(counts.get(key) ?? 0, persisted) + 1;
    counts.set(key, n);
    return n;
  }

  #countsOf(group: string): Map<string, number> {
    let counts = this.#counts.get(group);
    if (!counts) {
      counts = new Map();
      this.#counts.set(group, counts);
    }
    return counts;
  }

  /** Long-polls the member's partitions (or just waits, when it has none) for up to `blockMs`. */
  async #wait(member: Member, blockMs: number): Promise<void> {
    const from = new Map<string, bigint[]>();
    for (const s of member.parts.values()) {
      if (s.kind !== 'e') continue;
      const offsets = from.get(s.topic) ?? [];
      // A sparse array: waitAny polls only the partitions it holds.
      offsets[s.partition] = s.next;
      from.set(s.topic, offsets);
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

  /**
   * Records in the committed offset's metadata how many times each partition's head (the first
   * unprocessed record) has been delivered, so a crash or rebalance counts as a delivery for the
   * next owner; and commits the fetch position of a partition with nothing in flight, which a
   * read moved past markers and aborted records (no ack would), so a caught-up group commits
   * the partition's end and Kafka tools show lag 0. One OffsetCommit for all partitions; best effort.
   */
  async #recordHeads(member: Member): Promise<void> {
    const entries: { state: PartitionState; offset: bigint; metadata: string | null }[] = [];
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
    const n = this.#countsOf(group).get(countKey(state, offset));
    return n === undefined ? null : `ef:${offset}:${n}`;
  }

  /** Commits an ack; a member that lost the partition (stale generation) drops it instead. */
  async #commitOrDrop(member: Member, state: PartitionState, target: bigint): Promise<void> {
    const deadline = Date.now() + this.#sessionTimeoutMs;
    for (;;) {
      const current = this.#find(member, state);
      if (!current) return;
      try {
        await this.#commit(member, [{ state, offset: target, metadata: this.#headMetadata(member.group, state, target) }]);
        return;
      } catch (error) {
        if (!hasApiError(error, ...STALE)) throw error;
        if (Date.now() > deadline) return; // still not back in the group: the next owner redelivers
        await this.#awaitRejoin(member);
      }
    }
  }

  async #commit(member: Member, entries: { state: PartitionState; offset: bigint; metadata: string | null }[]): Promise<void> {
    const coordinator = member.consumer.coordinatorId ?? (await member.consumer.findGroupCoordinator());
    const metadata = await member.admin.metadata({ topics: [this.#ctx.names.events] });
    const broker = metadata.brokers.get(coordinator);
    if (!broker) throw new DriverError(NAME, `no broker for the coordinator of group ${member.consumer.groupId}`);
    const connection = await member.admin.connections.get(broker);
    const byTopic = new Map<
      string,
      { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: string | null }[]
    >();
    for (const e of entries) {
      const list = byTopic.get(e.state.topic) ?? [];
      list.push({ partitionIndex: e.state.partition, committedOffset: e.offset, committedLeaderEpoch: -1, committedMetadata: e.metadata });
      byTopic.set(e.state.topic, list);
    }
    await offsetCommitV8.api.async(
      connection,
      member.consumer.groupId,
      member.generation,
      member.memberId,
      null,
      [...byTopic].map(([name, partitions]) => ({ name, partitions })),
    );
    for (const e of entries) {
      if (e.offset > e.state.committed) e.state.committed = e.offset;
      e.state.recorded = e.metadata;
    }
  }

  /** Waits for the member's next generation (after a stale-generation answer) and applies it. */
  async #awaitRejoin(member: Member): Promise<void> {
    const deadline = Date.now() + this.#sessionTimeoutMs;
    const synced = (): boolean => member.latest?.generationId === member.generation && member.latest.memberId === member.memberId;
    while (synced() && Date.now() < deadline && !member.closed) await sleep(50);
    await this.#sync(member);
  }

  #current(member: Member, r: Receipt): PartitionState | undefined {
    for (const s of member.parts.values()) if (s.serial === r.serial) return s;
    return undefined;
  }

  #find(member: Member, state: PartitionState): PartitionState | undefined {
    return member.parts.get(`${state.topic}/${state.partition}`) === state ? state : undefined;
  }

  // --- admin -------------------------------------------------------------------------------

  async #sharedClient(): Promise<{ admin: Admin; log: PartitionLog; described: Set<string> }> {
    if (this.#closed) throw new StoreClosedError();
    this.#shared ??= Promise.resolve().then(() => {
      const admin = new Admin(this.#ctx.base('groups'));
      return { admin, log: new PartitionLog(admin), described: new Set<string>() };
    });
    return this.#shared;
  }

  async #createTopic(admin: Admin, topic: string): Promise<void> {
    await ensureTopic(admin, { topic, partitions: 1, replicas: this.#ctx.replicationFactor, configs: KEEP_FOREVER });
  }

  /** Committed offsets (with our metadata) of the group; absent where nothing is committed. */
  async #committed(
    admin: Admin,
    group: string,
    wanted: { topic: string; partitions: number[] }[],
  ): Promise<Map<string, { offset: bigint; metadata: string | null; head: { offset: bigint; deliveries: number } | undefined }>> {
    const groupId = this.#ctx.names.consumerGroup(group);
    // A dead member's dead-letter transaction holds its offsets unstable until the coordinator
    // aborts it (the producer's transaction timeout, 5 s): wait that out.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const [listed] = await admin.listConsumerGroupOffsets({
          groups: [{ groupId, topics: wanted.map((w) => ({ name: w.topic, partitionIndexes: w.partitions })) }],
          // Offsets of a dead-letter transaction still in progress: wait for its outcome.
          requireStable: true,
        });
        const out = new Map<
          string,
          { offset: bigint; metadata: string | null; head: { offset: bigint; deliveries: number } | undefined }
        >();
        for (const t of listed?.topics ?? []) {
          for (const p of t.partitions) {
            if (p.committedOffset < 0n) continue;
            const m = /^ef:(\d+):(\d+)$/.exec(p.metadata ?? '');
            const head = m && BigInt(m[1]!) === p.committedOffset ? { offset: p.committedOffset, deliveries: Number(m[2]) } : undefined;
            out.set(`${t.name}/${p.partitionIndex}`, { offset: p.committedOffset, metadata: p.metadata ?? null, head });
          }
        }
        return out;
      } catch (error) {
        if (!hasApiError(error, 'UNSTABLE_OFFSET_COMMIT', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR') || Date.now() > deadline)
          throw error;
        await sleep(50);
      }
    }
  }

  /** First offset (`beginning`) or last stable offset (`end`) of the events partitions. */
  async #boundaries(
    admin: Admin,
    topic: string,
    partitions: number[],
    where: 'beginning' | 'end',
  ): Promise<{ partition: number; offset: bigint }[]> {
    const timestamp = where === 'end' ? ListOffsetTimestamps.LATEST : ListOffsetTimestamps.EARLIEST;
    const [t] = await admin.listOffsets({
      topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    return partitions.map((partition) => {
      const offset = t?.partitions.find((p) => p.partitionIndex === partition)?.offset;
      if (offset === undefined) throw new DriverError(NAME, `no ${where} offset for partition ${partition} of ${topic}`);
      return { partition, offset };
    });
  }

  /** Letters of the group's DLQ without a redrive marker, oldest first, by id (their DLQ offset). */
  async #liveLetters(group: string): Promise<Map<string, { letter: DeadLetter }>> {
    const { admin, log, described } = await this.#sharedClient();
    const topic = this.#ctx.names.deadLetters(group);
    if (!described.has(topic)) {
      if (!(await admin.listTopics()).includes(topic)) return new Map();
      await log.describe(topic, 1);
      described.add(topic);
    }
    const letters = new Map<string, { letter: DeadLetter }>();
    for (let at = 0n; ; ) {
      const page = await log.fetch(topic, 0, at);
      if (page.logStart > at) {
        at = page.logStart;
        continue;
      }
      for (const record of page.records) {
        const h = new Map(record.headers.map(([k, v]) => [k?.toString('latin1'), v?.toString('utf8')] as const));
        const redriven = h.get(DL.letter);
        if (redriven !== undefined) {
          letters.delete(redriven);
          continue;
        }
        const event = storedEvent(record, 0);
        if (!event) continue;
        const id = String(record.offset);
        letters.set(id, {
          letter: {
            id,
            event: { ...event, position: { partition: Number(h.get(DL.partition)), offset: BigInt(h.get(DL.offset) ?? '0') } },
            reason: h.get(DL.reason) ?? '',
            deliveries: Number(h.get(DL.deliveries) ?? '1'),
            deadAt: Number(h.get(DL.at) ?? '0'),
          },
        });
      }
      if (page.next <= at) break;
      at = page.next;
      if (!page.fromCache && at >= page.lastStable) break;
    }
    return letters;
  }

  /** One transaction of the group's dead-letter producer (one per group and process; one transaction at a time). */
  async #transaction(group: string, fn: (tx: Awaited<ReturnType<Producer['beginTransaction']>>) => Promise<void>): Promise<void> {
    if (this.#closed) throw new StoreClosedError();
    let entry = this.#producers.get(group);
    if (!entry) {
      const producer = new Producer({
        ...this.#ctx.base(`cg-dlq`),
        // Unique per process: fencing is by the group generation (KIP-447), not by this id.
        transactionalId: `${this.#ctx.names.consumerGroup(group)}.tx.${randomUUID()}`,
        idempotent: true,
      });
      entry = { producer, lock: Promise.resolve() };
      this.#producers.set(group, entry);
    }
    const { producer } = entry;
    const run = entry.lock
      .catch(() => undefined)
      .then(async () => {
        const tx = await producer.beginTransaction();
        try {
          await fn(tx);
          await tx.commit();
        } catch (error) {
          await tx.abort().catch(async () => {
            // The producer cannot end the transaction (fenced, closed…): start over with a new one.
            if (this.#producers.get(group)?.producer === producer) this.#producers.delete(group);
            await producer.close().catch(() => undefined);
          });
          throw error;
        }
      });
    entry.lock = run.catch(() => undefined);
    await run;
  }

  /** Every events topic of the store (layout.ts) with its Kafka partitions. */
  #eventTopics(): { topic: string; partitions: number[] }[] {
    return this.#ctx.layout.byTopic().map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => p.partition) }));
  }
}

interface Receipt {
  readonly kind: Kind;
  readonly partition: number;
  readonly offset: bigint;
  readonly consumer: string;
  readonly serial: number;
}

/** `<kind>|<store partition>|<offset>|<consumer>|<ownership serial>`; consumer names cannot contain "|". */
function receipt(state: PartitionState, consumer: string, offset: bigint): string {
  return `${state.kind}|${state.store}|${offset}|${consumer}|${state.serial}`;
}

function parseReceipt(value: string): Receipt {
  const [kind, partition, offset, consumer, serial] = value.split('|');
  if ((kind !== 'e' && kind !== 'r') || partition === undefined || offset === undefined || consumer === undefined || serial === undefined) {
    throw new InvalidArgumentError(`not a kafka delivery receipt: ${JSON.stringify(value)}`);
  }
  return { kind, partition: Number(partition), offset: BigInt(offset), consumer, serial: Number(serial) };
}

/** Leaves the group and closes the client; never throws (closing is best effort). */
function closeConsumer(consumer: Consumer): Promise<void> {
  // force: a member has no streams, but a stuck one must not keep the process alive.
  return new Promise((resolve) => consumer.close(true, () => resolve()));
}

function memberKey(group: string, consumer: string): string {
  return `${group}|${consumer}`;
}

function countKey(state: PartitionState, offset: bigint): string {
  return `${state.topic}/${state.partition}/${offset}`;
}

function removeOffset(list: bigint[], offset: bigint): void {
  const i = list.indexOf(offset);
  if (i >= 0) list.splice(i, 1);
}

/** The event's record as records.ts lays it out, to another topic's partition 0, with its log position in headers. */
function eventCopy(topic: string, event: StoredEvent): OutgoingRecord & { headers: Map<Buffer, Buffer> } {
  const record = eventRecord({ topic, partition: 0 }, event.streamId, event, event.version);
  record.headers.set(Buffer.from(DL.partition), Buffer.from(String(event.position.partition)));
  record.headers.set(Buffer.from(DL.offset), Buffer.from(String(event.position.offset)));
  return record;
}

function letterRecord(topic: string, event: StoredEvent, reason: string, deliveries: number): OutgoingRecord {
  const record = eventCopy(topic, event);
  record.headers.set(Buffer.from(DL.reason), Buffer.from(reason, 'utf8'));
  record.headers.set(Buffer.from(DL.deliveries), Buffer.from(String(deliveries)));
  record.headers.set(Buffer.from(DL.at), Buffer.from(String(Date.now())));
  return record;
}
