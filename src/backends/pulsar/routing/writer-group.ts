import { randomUUID } from 'node:crypto';
import type { AppendRouting, RoutedBytes, RoutingHandler, RoutingMember } from '../../../core/driver.ts';
import { DriverError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import type { PulsarAdmin } from '../admin.ts';
import type { PulsarClient } from '../client/client.ts';
import type { Consumer, Message } from '../client/consumer.ts';
import { PULSAR as NAME } from '../client/errors.ts';
import { EARLIEST } from '../client/message-id.ts';
import type { Producer } from '../client/producer.ts';
import type { PulsarLog } from '../log.ts';
import { applyTopicRetention } from '../policies.ts';
import { entryOffset, type PulsarNames } from '../records.ts';

export interface PulsarWriterGroupContext {
  readonly client: PulsarClient;
  readonly admin: PulsarAdmin;
  /** For the reply partition's last message id at join (a pooled reader, retried). */
  readonly log: PulsarLog;
  readonly names: PulsarNames;
  readonly partitions: number;
}

/** Requests wait for an owner at most this long once handled; replies are read within seconds. */
const REQUESTS_RETENTION_MINUTES = 24 * 60;
const REPLIES_RETENTION_MINUTES = 60;
const WAIT_MS = 500;
const MAX_BATCH = 500;
/** How long a join waits for the broker to say, per partition, whether this writer is its active consumer. */
const FIRST_ASSIGNMENT_MS = 10_000;

/**
 * The store's writers as a Failover subscription (`PulsarNames.writers`) on every partition of
 * the requests topic, which is partitioned like the events: the broker makes one live writer
 * the active consumer of each partition (consumers sorted by name, partition index modulo their
 * count), and that writer owns the store partition of the same number. Only the active consumer
 * is sent a partition's requests; when it leaves or its connection drops, the broker hands the
 * partition, with every request not acknowledged, to the next one (after its failover delay,
 * 1 s by default). Replies go to a replies topic with as many partitions, of which each process
 * reads one (chosen at random) from where it joined, keeping the messages keyed with its own id.
 */
export class PulsarWriterGroup implements AppendRouting {
  readonly #ctx: () => PulsarWriterGroupContext;
  #topicsReady: Promise<void> | undefined;

  /** `ctx` is asked on join: the driver connects later than it builds this. */
  constructor(ctx: () => PulsarWriterGroupContext) {
    this.#ctx = ctx;
  }

  async join(handler: RoutingHandler): Promise<RoutingMember> {
    const ctx = this.#ctx();
    this.#topicsReady ??= this.#ensureTopics(ctx).catch((error: unknown) => {
      this.#topicsReady = undefined;
      throw error;
    });
    await this.#topicsReady;
    const member = new WriterMember(ctx, handler);
    try {
      await member.start();
    } catch (error) {
      await member.leave();
      throw error;
    }
    return member;
  }

  async #ensureTopics(ctx: PulsarWriterGroupContext): Promise<void> {
    const { admin, names, partitions } = ctx;
    await admin.ensurePartitionedTopic(names.requests, partitions);
    await admin.ensurePartitionedTopic(names.replies, partitions);
    // The namespace keeps events forever; requests and replies are worth nothing once handled.
    await applyTopicRetention(admin, names.requests, REQUESTS_RETENTION_MINUTES);
    await applyTopicRetention(admin, names.replies, REPLIES_RETENTION_MINUTES);
  }
}

interface OwnedRequests {
  readonly partition: number;
  readonly consumer: Consumer;
  /** Whether this writer is the partition's active consumer; undefined until the broker said. */
  readonly active: boolean | undefined;
}

class WriterMember implements RoutingMember {
  /** `<reply partition>/<id>`: requests carry it; replies to it are keyed with the id. */
  readonly address: string;
  /** Also the Failover consumer name: unique per process, so the broker tells the writers apart. */
  readonly #id = `w-${randomUUID()}`;
  readonly #ctx: PulsarWriterGroupContext;
  readonly #handler: RoutingHandler;
  readonly #replyPartition: number;
  readonly #sources: OwnedRequests[] = [];
  readonly #producers = new Map<string, Promise<Producer>>();
  #replies: Consumer | undefined;
  #stopped = false;
  #owned = new Set<number>();
  readonly #loops = new Set<Promise<void>>();
  #heard: () => void = () => undefined;

  constructor(ctx: PulsarWriterGroupContext, handler: RoutingHandler) {
    this.#ctx = ctx;
    this.#handler = handler;
    this.#replyPartition = Math.floor(Math.random() * ctx.partitions);
    this.address = `${this.#replyPartition}/${this.#id}`;
  }

  async start(): Promise<void> {
    const { client, log, names, partitions } = this.#ctx;
    // Replies from where we join (none is addressed to us before), given as that message's id,
    // not LATEST: a reader resubscribes after what it took last, else at its start, and LATEST
    // there would skip a reply sent while it reconnected before taking any (the sender then
    // waited for its resend, 30 s).
    const topic = partitionOf(names.replies, this.#replyPartition);
    this.#replies = await client.subscribe({
      topic,
      subscription: `eventfold-replies-${this.#id}`,
      durable: false,
      startMessageId: (await log.lastMessageId(topic)) ?? EARLIEST,
      receiverQueueSize: 1000,
    });
    this.#track(this.#readReplies(this.#replies));

    const heard = new Promise<void>((resolve) => {
      this.#heard = resolve;
    });
    const subscribed = await Promise.allSettled(
      Array.from({ length: partitions }, async (_, partition): Promise<OwnedRequests> => {
        // The broker may say whether we are active before subscribe() resolves.
        const source: { partition: number; consumer: Consumer | undefined; active: boolean | undefined } = {
          partition,
          consumer: undefined,
          active: undefined,
        };
        source.consumer = await client.subscribe({
          topic: partitionOf(names.requests, partition),
          subscription: names.writers,
          type: 'Failover',
          name: this.#id,
          initialPosition: 'earliest',
          receiverQueueSize: 1000,
          onActiveChange: (active) => {
            const was = source.active;
            source.active = active;
            // No longer active: what is queued goes to the new active consumer too; do not hand it out here.
            if (!active) source.consumer?.dropQueued();
            // Active again: the broker also says "inactive" when nothing moved (a consumer of
            // another process joined or left), and then does not rewind, so what was dropped
            // would wait for the sender's resend (30 s): ask for every unacknowledged request
            // again (one served meanwhile is recognised by its event ids).
            else if (was === false) source.consumer?.redeliverUnacknowledged();
            this.#changed();
          },
        });
        return source as OwnedRequests;
      }),
    );
    for (const r of subscribed) if (r.status === 'fulfilled') this.#sources.push(r.value);
    const failed = subscribed.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.#changed();
    // The broker tells each new Failover consumer whether it is active; wait for every partition's word.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([heard, new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_ASSIGNMENT_MS)))]);
    clearTimeout(timer);
    for (const source of this.#sources) this.#track(this.#readRequests(source));
  }

  send(partition: number, bytes: Uint8Array): Promise<void> {
    return this.#send(partitionOf(this.#ctx.names.requests, partition), bytes, this.#id);
  }

  reply(address: string, bytes: Uint8Array): Promise<void> {
    const to = parseAddress(address, this.#ctx.partitions);
    return this.#send(partitionOf(this.#ctx.names.replies, to.partition), bytes, to.member);
  }

  async leave(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // Closing the consumers hands their partitions to the others at once.
    await Promise.allSettled([...this.#sources.map((s) => s.consumer.close()), this.#replies?.close()]);
    await Promise.allSettled(this.#loops);
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.allSettled(producers.map(async (p) => (await p).close()));
  }

  async #send(topic: string, bytes: Uint8Array, key: string): Promise<void> {
    if (this.#stopped) throw new DriverError(NAME, 'the writer group was left');
    let producer = this.#producers.get(topic);
    if (!producer) {
      producer = this.#ctx.client.createProducer({ topic });
      this.#producers.set(topic, producer);
      producer.catch(() => this.#producers.delete(topic));
    }
    await (await producer).send(bytes, { key });
  }

  #changed(): void {
    const owned = new Set(this.#sources.filter((s) => s.active === true).map((s) => s.partition));
    if (this.#sources.length === this.#ctx.partitions && this.#sources.every((s) => s.active !== undefined)) this.#heard();
    if (owned.size === this.#owned.size && [...owned].every((p) => this.#owned.has(p))) return;
    this.#owned = owned;
    this.#handler.owned(owned);
  }

  /** A partition's requests, in order, while this writer is their active consumer; acknowledged once answered. */
  async #readRequests(source: OwnedRequests): Promise<void> {
    const { consumer, partition } = source;
    while (!this.#stopped) {
      await consumer.whenQueued(WAIT_MS);
      if (this.#stopped) return;
      if (consumer.ended) {
        // Closed or failed under us (whenQueued answers at once then: looping would spin): this
        // process no longer serves the partition; the broker gives it to another writer.
        (source as { active: boolean | undefined }).active = false;
        this.#changed();
        return;
      }
      const batch: Message[] = [];
      for (let m = consumer.tryReceive(); m; m = batch.length < MAX_BATCH ? consumer.tryReceive() : undefined) batch.push(m);
      if (batch.length === 0) continue;
      let doneUpTo: bigint;
      try {
        doneUpTo = await this.#handler.requests(
          partition,
          batch.map((m): RoutedBytes => ({ offset: entryOffset(m.messageId), bytes: m.payload })),
        );
      } catch {
        doneUpTo = -1n;
      }
      let all = true;
      for (const m of batch) {
        if (entryOffset(m.messageId) < doneUpTo) consumer.ack(m.messageId);
        else all = false;
      }
      // The rest is the next owner's (the broker redelivers what is not acknowledged on a
      // failover), or ours again if the broker still makes us active.
      if (!all && !this.#stopped) {
        await sleep(100);
        consumer.redeliverUnacknowledged();
      }
    }
  }

  async #readReplies(consumer: Consumer): Promise<void> {
    while (!this.#stopped) {
      await consumer.whenQueued(WAIT_MS);
      // Closed or failed under us: nothing more comes (and whenQueued answers at once: no spin).
      // Routed appends then end in the reply timeout's DriverError.
      if (consumer.ended) return;
      for (let m = consumer.tryReceive(); m; m = consumer.tryReceive()) {
        if (m.key === this.#id) this.#handler.reply(m.payload);
      }
    }
  }

  #track(loop: Promise<void>): void {
    const tracked = loop.catch(() => undefined);
    this.#loops.add(tracked);
    void tracked.finally(() => this.#loops.delete(tracked));
  }
}

function partitionOf(topic: string, partition: number): string {
  return `${topic}-partition-${partition}`;
}

function parseAddress(address: string, partitions: number): { partition: number; member: string } {
  const slash = address.indexOf('/');
  const partition = Number(address.slice(0, slash));
  const member = address.slice(slash + 1);
  if (slash < 1 || !Number.isInteger(partition) || partition < 0 || partition >= partitions || !/^w-[0-9a-f-]{36}$/.test(member)) {
    throw new DriverError(NAME, `not a writer's reply address: ${JSON.stringify(address).slice(0, 100)}`);
  }
  return { partition, member };
}
