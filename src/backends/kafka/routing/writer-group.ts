import { randomUUID } from 'node:crypto';
import { Admin, type BaseOptions, type Connection, Consumer, offsetCommitV8, Producer } from '@platformatic/kafka';
import type { AppendRouting, RoutedBytes, RoutingHandler, RoutingMember } from '../../../core/driver.ts';
import { DriverError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { ensureTopic } from '../admin.ts';
import { memberProtocols, stickyAssigner } from '../assignor.ts';
import { KAFKA as NAME } from '../errors.ts';
import { closeConsumer } from '../groups/member.ts';
import { committedOffsets } from '../groups/offsets.ts';
import type { TopicLayout } from '../layout.ts';
import { PartitionLog } from '../log.ts';
import type { KafkaNames } from '../topics.ts';

export interface KafkaRoutingOptions {
  /** How long the group waits for a silent writer before its partitions go to the others. Default 10000 ms. */
  readonly sessionTimeoutMs?: number;
  /** Default a third of the session timeout, at most 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** How long a rebalance waits for every writer to rejoin. Default 30000 ms. */
  readonly rebalanceTimeoutMs?: number;
}

export interface KafkaWriterGroupContext {
  readonly names: KafkaNames;
  readonly layout: TopicLayout;
  readonly replicationFactor: number;
  readonly options: KafkaRoutingOptions | undefined;
  base(role: string): BaseOptions;
}

/** Requests wait for an owner at most this long; replies are read within seconds. */
const REQUESTS_CONFIG = { 'cleanup.policy': 'delete', 'retention.ms': String(24 * 3600_000) };
const REPLIES_CONFIG = { 'cleanup.policy': 'delete', 'retention.ms': String(3600_000) };
const WAIT_MS = 500;
const MAX_PAGES_IN_FLIGHT = 4;
const COMMIT_INTERVAL_MS = 100;

/**
 * The store's writers as a Kafka consumer group (`<prefix>._writers`) over the requests topic
 * `<prefix>._requests`, which has a partition per store partition: the coordinator gives each
 * partition to one live writer (sticky: assignor.ts), and that writer owns the store partition
 * of the same number. Requests to a partition are fetched by its owner only; replies go to
 * `<prefix>._replies`, where each process reads one partition (chosen at random) from where it
 * joined, keeping the records keyed with its own address. Offsets of handled requests are
 * committed with the member's generation, so a writer that lost a partition cannot move it.
 */
export class KafkaWriterGroup implements AppendRouting {
  readonly #ctx: KafkaWriterGroupContext;

  constructor(ctx: KafkaWriterGroupContext) {
    this.#ctx = ctx;
  }

  async join(handler: RoutingHandler): Promise<RoutingMember> {
    const member = new WriterMember(this.#ctx, handler);
    try {
      await member.start();
    } catch (error) {
      await member.leave();
      throw error;
    }
    return member;
  }
}

class WriterMember implements RoutingMember {
  /** `<reply partition>/<id>`: requests carry it; replies to it are keyed with the id. */
  readonly address: string;
  readonly #id = randomUUID();
  readonly #ctx: KafkaWriterGroupContext;
  readonly #handler: RoutingHandler;
  readonly #requestsTopic: string;
  readonly #repliesTopic: string;
  readonly #replyPartition: number;
  /** Separate clients (connections) for the replies' long-poll and the rest (each owned partition's reader has its own). */
  readonly #admin: Admin;
  readonly #repliesAdmin: Admin;
  readonly #repliesLog: PartitionLog;
  readonly #producer: Producer;
  readonly #consumer: Consumer;
  /** Owned partitions, each with its reader's state. */
  #owned = new Map<number, OwnedRequests>();
  /** Readers start once the first join is done. */
  #joined = false;
  #generation = -1;
  #memberId = '';
  #stopped = false;
  readonly #loops = new Set<Promise<void>>();
  readonly #outbox: { message: OutgoingMessage; resolve: () => void; reject: (error: unknown) => void }[] = [];
  #sending = false;
  #coordinator: Promise<Connection> | undefined;

  constructor(ctx: KafkaWriterGroupContext, handler: RoutingHandler) {
    this.#ctx = ctx;
    this.#handler = handler;
    this.#requestsTopic = ctx.names.requests;
    this.#repliesTopic = ctx.names.replies;
    this.#replyPartition = Math.floor(Math.random() * ctx.layout.perTopic);
    this.address = `${this.#replyPartition}/${this.#id}`;
    this.#admin = new Admin(ctx.base('writers'));
    this.#repliesAdmin = new Admin(ctx.base('writers-replies'));
    this.#repliesLog = new PartitionLog(this.#repliesAdmin);
    this.#producer = new Producer({ ...ctx.base('writers-router'), idempotent: true });
    const session = ctx.options?.sessionTimeoutMs ?? 10_000;
    this.#consumer = new Consumer({
      ...ctx.base('writers-member'),
      groupId: ctx.names.writers,
      sessionTimeout: session,
      heartbeatInterval: ctx.options?.heartbeatIntervalMs ?? Math.min(1000, Math.floor(session / 3)),
      rebalanceTimeout: ctx.options?.rebalanceTimeoutMs ?? 30_000,
      autocommit: false,
    });
  }

  async start(): Promise<void> {
    const { layout, replicationFactor } = this.#ctx;
    const spec = (topic: string, partitions: number, configs: Record<string, string>) => ({
      topic,
      partitions,
      replicas: replicationFactor,
      configs,
    });
    await ensureTopic(this.#admin, spec(this.#requestsTopic, layout.partitions, REQUESTS_CONFIG));
    await ensureTopic(this.#admin, spec(this.#repliesTopic, layout.perTopic, REPLIES_CONFIG));
    await this.#repliesLog.describe(this.#repliesTopic, layout.perTopic);
    // Replies from where we join: none is addressed to us before.
    const replyFrom = await this.#repliesLog.highWatermark(this.#repliesTopic, this.#replyPartition);
    this.#track(this.#readReplies(replyFrom));

    const protocol = memberProtocols(this.#id);
    let first: () => void = () => undefined;
    const assigned = new Promise<void>((resolve) => {
      first = resolve;
    });
    this.#consumer.on('consumer:group:join', (joined) => {
      const assignments = joined.assignments ?? [];
      protocol.holding(joined.generationId ?? -1, assignments);
      this.#assign(joined.memberId, joined.generationId ?? -1, assignments);
      first();
    });
    // A failed background rejoin: the library tries again; the partitions are the others' meanwhile.
    this.#consumer.on('error', () => this.#assign(this.#memberId, -1, []));
    this.#consumer.topics.trackAll(this.#requestsTopic);
    await this.#consumer.joinGroup({ protocols: protocol.protocols, partitionAssigner: stickyAssigner });
    await assigned;
    this.#joined = true;
    for (const state of this.#owned.values()) this.#track(this.#readRequests(state));
  }

  send(partition: number, bytes: Uint8Array): Promise<void> {
    return this.#produce({ topic: this.#requestsTopic, partition, key: Buffer.from(this.#id), value: buffer(bytes) });
  }

  reply(address: string, bytes: Uint8Array): Promise<void> {
    const to = parseAddress(address, this.#ctx.layout.perTopic);
    return this.#produce({ topic: this.#repliesTopic, partition: to.partition, key: Buffer.from(to.member), value: buffer(bytes) });
  }

  /**
   * One produce at a time, carrying every message queued meanwhile: the idempotent producer
   * numbers each send, and concurrent sends to one partition can reach the broker out of order
   * (OUT_OF_ORDER_SEQUENCE_NUMBER); batching also makes one round trip serve many appends.
   */
  #produce(message: OutgoingMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#outbox.push({ message, resolve, reject });
      if (this.#outbox.length === 1 && !this.#sending) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#outbox.length > 0) {
        const batch = this.#outbox.splice(0, 500);
        try {
          await this.#producer.send({ messages: batch.map((b) => b.message) as never });
          for (const b of batch) b.resolve();
        } catch (error) {
          for (const b of batch) b.reject(error);
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  #track(loop: Promise<void>): void {
    this.#loops.add(loop);
    void loop.finally(() => this.#loops.delete(loop));
  }

  async leave(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await closeConsumer(this.#consumer);
    await Promise.allSettled(this.#loops);
    await Promise.allSettled([this.#producer.close(), this.#admin.close(), this.#repliesAdmin.close()]);
  }

  #assign(memberId: string, generation: number, assignments: readonly { topic: string; partitions: readonly number[] }[]): void {
    const next = new Map<number, OwnedRequests>();
    const consecutive = generation === this.#generation + 1 || generation === this.#generation;
    for (const a of assignments) {
      if (a.topic !== this.#requestsTopic) continue;
      for (const p of a.partitions) {
        const held = this.#owned.get(p);
        // A partition kept from the previous generation keeps its reader; any other starts at the group's commit.
        next.set(p, held && consecutive ? held : { partition: p, next: undefined, stop: false });
      }
    }
    for (const [p, state] of this.#owned) if (next.get(p) !== state) state.stop = true;
    const started = [...next.values()].filter((state) => this.#owned.get(state.partition) !== state);
    this.#owned = next;
    this.#generation = generation;
    this.#memberId = memberId;
    this.#handler.owned(new Set(next.keys()));
    if (this.#joined) for (const state of started) this.#track(this.#readRequests(state));
  }

  /**
   * Fetches one owned partition's requests (a long-poll) and hands each page to the core as it
   * comes, without waiting for the earlier pages' appends: they queue for the partition's next
   * transaction meanwhile (group commit). Commits follow in order, each after its page is done;
   * at most `MAX_PAGES_IN_FLIGHT` pages are. Stops when the partition moves. A connection of its
   * own: a broker answers one connection's requests in order, so partitions sharing one would
   * wait behind each other's polls.
   */
  async #readRequests(state: OwnedRequests): Promise<void> {
    const topic = this.#requestsTopic;
    const admin = new Admin(this.#ctx.base(`writers-p${state.partition}`));
    const log = new PartitionLog(admin);
    const inFlight = new Set<Promise<unknown>>();
    let committed: Promise<boolean> = Promise.resolve(true);
    try {
      while (!state.stop && !this.#stopped) {
        try {
          if (state.next === undefined) {
            await log.describe(topic, this.#ctx.layout.partitions);
            const offsets = await committedOffsets(admin, this.#ctx.names.writers, [{ topic, partitions: [state.partition] }]);
            state.next = offsets.get(`${topic}/${state.partition}`)?.offset ?? 0n;
          }
          while (inFlight.size >= MAX_PAGES_IN_FLIGHT) await Promise.race(inFlight);
          const page = await log.fetch(topic, state.partition, state.next, WAIT_MS);
          const batch: RoutedBytes[] = page.records.filter((r) => r.value !== null).map((r) => ({ offset: r.offset, bytes: r.value! }));
          const last = batch[batch.length - 1];
          if (page.next > state.next) state.next = page.next;
          if (last === undefined || state.stop) continue;
          const handled = this.#handler.requests(state.partition, batch);
          const pageEnd = page.next;
          // In page order: a page's offset is committed once it and every page before it are done.
          committed = committed.then(async (previousDone) => {
            const done = await handled.catch(() => batch[0]!.offset);
            if (!previousDone) return false;
            if (done < last.offset + 1n) {
              state.stop = true; // the partition moved: the next owner starts at `done`
              await this.#commitSoon(state, done);
              return false;
            }
            void this.#commitSoon(state, pageEnd);
            return true;
          });
          const tracked: Promise<unknown> = committed.finally(() => inFlight.delete(tracked));
          inFlight.add(tracked);
        } catch {
          if (state.stop || this.#stopped) return;
          // The broker or the group is moving: look again shortly.
          await sleep(200);
        }
      }
    } finally {
      await committed.catch(() => undefined);
      await state.committing;
      await admin.close().catch(() => undefined);
    }
  }

  /**
   * Commits `offset` for the partition, coalesced: while a commit is in flight, later offsets
   * wait and only the highest goes next, at most one commit per `COMMIT_INTERVAL_MS`. A request
   * handled but not yet committed when its owner dies is read again by the next owner, whose
   * event-id check recognises it (see core/log/append-router.ts), so a late commit costs a
   * re-read, never a second application; one commit per page cost a round trip per page.
   */
  #commitSoon(state: OwnedRequests, offset: bigint): Promise<void> {
    if (state.commitWanted === undefined || offset > state.commitWanted) state.commitWanted = offset;
    // Assigned only when unset, and cleared by a `finally` that runs after the assignment: an
    // async body that finished at once would clear it before `??=` stored it, leaving a settled
    // promise behind that no later offset would ever run.
    if (state.committing === undefined) {
      const run = async (): Promise<void> => {
        while (state.commitWanted !== undefined && state.commitWanted !== state.commitDone) {
          const wanted = state.commitWanted;
          await this.#commit(state.partition, wanted).catch(() => undefined);
          state.commitDone = wanted;
          if (state.commitWanted !== wanted && !state.stop && !this.#stopped) await sleep(COMMIT_INTERVAL_MS);
        }
      };
      state.committing = run().finally(() => {
        state.committing = undefined;
      });
    }
    return state.committing ?? Promise.resolve();
  }

  /** OffsetCommit with our generation: refused once a rebalance gave the partition to someone else. */
  async #commit(partition: number, offset: bigint): Promise<void> {
    if (!this.#owned.has(partition)) return;
    const connection = await this.#coordinatorConnection();
    try {
      await offsetCommitV8.api.async(connection, this.#ctx.names.writers, this.#generation, this.#memberId, null, [
        {
          name: this.#requestsTopic,
          partitions: [{ partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }],
        },
      ]);
    } catch (error) {
      this.#coordinator = undefined; // the coordinator may have moved: look it up again next time
      throw error;
    }
  }

  /** The group coordinator's connection, looked up once (not a metadata request per commit). */
  #coordinatorConnection(): Promise<Connection> {
    this.#coordinator ??= (async () => {
      const consumer = this.#consumer;
      const coordinator = consumer.coordinatorId ?? (await consumer.findGroupCoordinator());
      const metadata = await this.#admin.metadata({ topics: [this.#requestsTopic] });
      const broker = metadata.brokers.get(coordinator);
      if (!broker) throw new DriverError(NAME, `no broker for the coordinator of group ${this.#ctx.names.writers}`);
      return this.#admin.connections.get(broker);
    })();
    const pending = this.#coordinator;
    pending.catch(() => {
      if (this.#coordinator === pending) this.#coordinator = undefined;
    });
    return pending;
  }

  async #readReplies(from: bigint): Promise<void> {
    let next = from;
    const mine = Buffer.from(this.#id);
    while (!this.#stopped) {
      try {
        const page = await this.#repliesLog.fetch(this.#repliesTopic, this.#replyPartition, next, WAIT_MS);
        for (const record of page.records) {
          if (record.value && record.key?.equals(mine)) this.#handler.reply(record.value);
        }
        if (page.next > next) next = page.next;
      } catch {
        if (this.#stopped) return;
        await sleep(200);
      }
    }
  }
}

/** The reader of one owned partition of the requests topic. */
interface OwnedRequests {
  readonly partition: number;
  /** Next offset to fetch; undefined until read from the group's commits. */
  next: bigint | undefined;
  /** Set when the partition moved (or the member leaves): the reader stops. */
  stop: boolean;
  /** The highest offset to commit, the last one committed, and the commit loop while it runs. */
  commitWanted?: bigint;
  commitDone?: bigint;
  committing?: Promise<void> | undefined;
}

interface OutgoingMessage {
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer;
  readonly value: Buffer;
}

function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseAddress(address: string, partitions: number): { partition: number; member: string } {
  const match = /^(\d{1,5})\/([0-9a-f-]{36})$/.exec(address);
  const partition = match ? Number(match[1]) : Number.NaN;
  if (!match || partition >= partitions) throw new DriverError(NAME, `not a reply address: ${JSON.stringify(address)}`);
  return { partition, member: match[2]! };
}
