import { Admin, Consumer, FetchIsolationLevels } from '@platformatic/kafka';
import { StoreClosedError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { memberProtocols, stickyAssigner } from '../assignor.ts';
import { type KafkaGroupContext, type Lifecycle, sessionTimeoutMs } from './context.ts';
import { closeConsumer, type Kind, Member, type PartitionState } from './member.ts';
import { committedOffsets } from './offsets.ts';

/**
 * This process's members of every group, by group and consumer name: joining on the first read,
 * applying rebalances, and leaving (on `leave`, on a reset, on close, or after going idle for
 * longer than the core's claim interval, like a Java consumer after `max.poll.interval.ms`).
 */
export class Membership {
  readonly #ctx: KafkaGroupContext;
  readonly #lifecycle: Lifecycle;
  readonly #members = new Map<string, Member>();
  readonly #joining = new Map<string, Promise<Member>>();
  /** Idle limits of members not joined yet (applied when they join). */
  readonly #idleLimits = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Last ownership serial handed out (PartitionState.serial). */
  #serial = 0;

  constructor(ctx: KafkaGroupContext, lifecycle: Lifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  /** The joined member, if any: one that left the group has none (its deliveries no longer ack). */
  find(group: string, consumer: string): Member | undefined {
    return this.#members.get(memberKey(group, consumer));
  }

  /** The consumer's member, joining the group first if it has none (or its client gave up rejoining). */
  async member(group: string, consumer: string): Promise<Member> {
    this.#lifecycle.throwIfClosed();
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

  /** How long the member may go without reading before it leaves (the consumer's `claimIdleMs`). */
  setIdleLimit(group: string, consumer: string, minIdleMs: number): void {
    const member = this.#members.get(memberKey(group, consumer));
    if (member) {
      member.idleLimitMs = Math.max(1, minIdleMs);
      member.lastActive = Date.now();
    } else {
      this.#idleLimits.set(memberKey(group, consumer), Math.max(1, minIdleMs));
    }
  }

  /**
   * Applies the latest assignment. A partition the member held in the previous generation and
   * still holds in the next one keeps its state (nobody else owned it in between); any other is
   * started afresh from the group's committed offset.
   */
  async sync(member: Member): Promise<void> {
    // (A member whose client gave up rejoining is replaced on its next read: see member().)
    const latest = member.latest;
    if (!latest || (latest.generationId === member.generation && latest.memberId === member.memberId)) return;
    const consecutive = latest.memberId === member.memberId && latest.generationId === member.generation + 1;
    const { names, layout } = this.#ctx;
    const next = new Map<string, PartitionState>();
    const fresh: { kind: Kind; topic: string; partition: number; store: number }[] = [];
    for (const assignment of latest.assignments) {
      const events = layout.partitionFor(assignment.topic, 0) !== undefined;
      const kind: Kind | undefined = events ? 'e' : assignment.topic === names.redrive(member.group) ? 'r' : undefined;
      if (!kind) continue;
      for (const partition of assignment.partitions) {
        const kept = member.parts.get(`${assignment.topic}/${partition}`);
        if (kept && consecutive) next.set(`${assignment.topic}/${partition}`, kept);
        else
          fresh.push({
            kind,
            topic: assignment.topic,
            partition,
            store: events ? layout.partitionFor(assignment.topic, partition)! : partition,
          });
      }
    }
    if (fresh.length > 0) {
      const byTopic = new Map<string, number[]>();
      for (const { topic, partition } of fresh) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
      const committed = await committedOffsets(
        member.admin,
        names.consumerGroup(member.group),
        [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      );
      for (const owned of fresh) {
        const found = committed.get(`${owned.topic}/${owned.partition}`);
        const offset = found?.offset ?? 0n;
        next.set(`${owned.topic}/${owned.partition}`, {
          ...owned,
          serial: ++this.#serial,
          next: offset,
          committed: offset,
          inFlight: [],
          head: found?.head,
          recorded: found?.metadata ?? null,
        });
      }
    }
    member.parts = next;
    member.generation = latest.generationId;
    member.memberId = latest.memberId;
  }

  /** Waits for the member's next generation (after a stale-generation answer) and applies it. */
  async awaitRejoin(member: Member): Promise<void> {
    const deadline = Date.now() + sessionTimeoutMs(this.#ctx);
    while (member.isSynced() && Date.now() < deadline && !member.closed) await sleep(50);
    await this.sync(member);
  }

  /** A stopped consumer leaves the group at once, so the coordinator hands its partitions to the others. */
  async leave(group: string, consumer: string): Promise<void> {
    await this.#joining.get(memberKey(group, consumer))?.catch(() => undefined);
    const member = this.#members.get(memberKey(group, consumer));
    if (member) await this.#closeMember(member);
  }

  /** Every member of this process in the group leaves (before a reset). */
  async leaveGroup(group: string): Promise<void> {
    await Promise.all([...this.#members.values()].filter((member) => member.group === group).map((member) => this.#closeMember(member)));
  }

  /** Every member leaves (after the joins under way). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#joining.values()]);
    await Promise.allSettled([...this.#members.values()].map((member) => this.#closeMember(member)));
  }

  async #join(group: string, name: string): Promise<Member> {
    const names = this.#ctx.names;
    const session = sessionTimeoutMs(this.#ctx);
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
    consumer.on('consumer:group:join', (joined) => {
      member.latest = { memberId: joined.memberId, generationId: joined.generationId ?? -1, assignments: joined.assignments ?? [] };
      protocol.holding(member.latest.generationId, member.latest.assignments);
    });
    // A failed background rejoin is emitted as 'error': keep it for the next read instead of crashing.
    consumer.on('error', (error: unknown) => {
      member.error = error;
    });
    try {
      for (const { topic } of this.#ctx.layout.topics) await member.log.describe(topic, this.#ctx.layout.perTopic);
      await member.log.describe(names.redrive(group), 1);
      consumer.topics.trackAll(...this.#ctx.layout.topics.map(({ topic }) => topic), names.redrive(group));
      await consumer.joinGroup({ protocols: protocol.protocols, partitionAssigner: stickyAssigner });
    } catch (error) {
      await closeConsumer(consumer);
      await admin.close().catch(() => undefined);
      throw error;
    }
    if (this.#lifecycle.closed) {
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
      for (const member of this.#members.values()) {
        if (!member.closed && now - member.lastActive > member.idleLimitMs) void this.#closeMember(member);
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
}

function memberKey(group: string, consumer: string): string {
  return `${group}|${consumer}`;
}
