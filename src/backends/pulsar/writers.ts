import { randomUUID } from 'node:crypto';
import type { AppendRequest, AppendResult, PartitionLease } from '../../core/driver.ts';
import { DriverError, PartitionFencedError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import type { PulsarClient } from './client/client.ts';
import type { Message } from './client/consumer.ts';
import { ProducerFencedError, PULSAR as NAME, PulsarServerError } from './client/errors.ts';
import { ServerError } from './client/proto/PulsarApi_pb.ts';
import type { MessageId } from './client/message-id.ts';
import type { Producer } from './client/producer.ts';
import { TransactionCoordinators } from './client/transactions.ts';
import type { FullRef } from './index-checkpoints.ts';
import { type IndexWriter, PulsarPartitionLease } from './lease.ts';
import type { PulsarLog } from './log.ts';
import { ENTRY_SPAN, entryOffset, kindOf, lastEventOffset, P, type PulsarNames } from './records.ts';
import { appendInTransaction } from './transaction-append.ts';

export interface PulsarWritersContext {
  readonly client: PulsarClient;
  readonly names: PulsarNames;
  readonly log: PulsarLog;
  /** Send timeout of the writers: a send with no receipt by then has an unknown outcome and is settled. */
  readonly sendTimeoutMs: number;
  /** How long an `appendAcross` transaction may stay open before the coordinator aborts it. */
  readonly transactionTimeoutMs: number;
  /** The last full index checkpoint known of each partition (read or written here), which deltas name. */
  readonly indexRefs?: Map<number, FullRef>;
}

/** A claim waits this much longer than a transaction may stay open for its marker to become readable. */
const READABLE_MARGIN_MS = 10_000;

/** How long a fenced lease waits for the new owner's claim marker before it claims again itself to settle. */
const FENCED_SETTLE_MS = 10_000;
/** How long settling keeps trying to read the partition back while the broker refuses readers. */
const SETTLE_READ_MS = 15_000;
/** Claim markers a claim sends at most while deduplication answers "already stored" (a fenced writer's sends). */
const MAX_MARKER_TRIES = 100;
/** Claims in a row a partition's claim may lose to other claimers before it gives up. */
const MAX_CLAIM_TRIES = 10;
/**
 * Pause after a lost claim, times the attempt, ±50 %. Not shorter: fencing in quick succession
 * (a producer fenced while its marker is in flight, then fenced again) is what deadlocks the
 * 4.0.7 broker (docs/architecture/pulsar.md, "Broker traps"): claim storms must thin out.
 */
const CLAIM_PAUSE_MS = 50;

/**
 * Partition ownership on Pulsar. A claim opens an ExclusiveWithFencing producer (fencing the
 * previous owner: its later sends fail, and what it had in flight lands before anything of
 * ours, the partition being one ordered log), then publishes a claim marker and reads up to it:
 * everything before the marker is all an earlier owner will ever have stored.
 *
 * The partition's head (its last event) is what the claim hands the core as `caughtUpTo`. A
 * marker records the head as of the last entry the claim saw before it (`ef-head`, `ef-from`);
 * only a fenced owner's in-flight commits can lie between, so the head at a marker is the last
 * commit after `ef-from` and up to the marker, else `ef-head`.
 */
export class PulsarWriters {
  readonly #ctx: PulsarWritersContext;
  readonly #leases = new Set<PulsarPartitionLease>();
  readonly #indexRefs: Map<number, FullRef>;
  #coordinators: TransactionCoordinators | undefined;

  constructor(ctx: PulsarWritersContext) {
    this.#ctx = ctx;
    this.#indexRefs = ctx.indexRefs ?? new Map();
  }

  /**
   * A claim fenced by a later one before it got its marker stored lost the race: it tries
   * again (after a short random pause, so racing claimers spread out), as a Kafka claim's
   * InitProducerId would have waited its turn.
   */
  async claim(partition: number): Promise<PulsarPartitionLease> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#claimOnce(partition);
      } catch (error) {
        // ProducerBusy: the fenced producer of our name is still being closed on the broker.
        const busy = error instanceof PulsarServerError && error.serverError === ServerError.ProducerBusy;
        if (!(error instanceof ProducerFencedError) && !busy) throw error;
        if (attempt >= MAX_CLAIM_TRIES) throw new PartitionFencedError(NAME, partition, error);
        await sleep(CLAIM_PAUSE_MS * attempt * (0.5 + Math.random()));
      }
    }
  }

  async #claimOnce(partition: number): Promise<PulsarPartitionLease> {
    const topic = this.#ctx.names.partition(partition);
    const producer = await this.#ctx.client.createProducer({
      topic,
      name: this.#ctx.names.writer(partition),
      accessMode: 'ExclusiveWithFencing',
      sendTimeoutMs: this.#ctx.sendTimeoutMs,
      maxPendingMessages: 1,
    });
    let index: IndexWriter | undefined;
    try {
      const id = randomUUID();
      // The index producer opens after the events producer and before the marker: a claim that
      // fences us later fences it too (lease.ts, writeIndexCheckpoint).
      const opening = this.#indexWriter(partition); // never rejects
      const last = await this.#ctx.log.lastMessage(topic).catch(async (error: unknown) => {
        index = await opening;
        throw error;
      });
      index = await opening;
      const before = last === undefined ? undefined : await this.headAt(partition, last);
      // Publish times never go back along the partition (lease.ts): at least 1, so a reset of a group to time 0 is before all.
      let published = Math.max(1, last?.publishTime ?? 1);
      const { marker, sequenceId } = await this.#mark(producer, id, last, before, published);
      // An open transaction (another lease's appendAcross) may hold a commit before our marker
      // that readers do not get yet: catching up now could miss it if it commits later.
      await this.readable(partition, marker);
      const caughtUpTo = await this.#headBetween(
        partition,
        last === undefined ? 0n : entryOffset(last.messageId) + ENTRY_SPAN,
        marker,
        before,
        (m) => {
          published = Math.max(published, m.publishTime);
        },
      );
      const lease: PulsarPartitionLease = new PulsarPartitionLease({
        partition,
        caughtUpTo,
        id,
        producer,
        marker,
        sequenceId,
        published,
        settle: (l) => this.#settle(partition, l),
        onRelease: () => this.#leases.delete(lease),
        index,
      });
      this.#leases.add(lease);
      return lease;
    } catch (error) {
      await producer.close().catch(() => undefined);
      await index?.producer?.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The claim's writer of index checkpoints. Without one (the index topic missing, say) the
   * claim still stands: only its checkpoints are refused, and cold starts scan.
   */
  async #indexWriter(partition: number): Promise<IndexWriter> {
    const refs = this.#indexRefs;
    const common = { full: () => refs.get(partition), setFull: (ref: FullRef) => refs.set(partition, ref) };
    try {
      const producer = await this.#ctx.client.createProducer({
        topic: this.#ctx.names.indexPartition(partition),
        accessMode: 'ExclusiveWithFencing',
        sendTimeoutMs: this.#ctx.sendTimeoutMs,
        maxPendingMessages: 1,
      });
      return { ...common, producer };
    } catch (error) {
      return { ...common, producer: undefined, missing: error };
    }
  }

  /** One transaction over the leases' partitions (transaction-append.ts). */
  appendAcross(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const own = leases.map((lease) => {
      if (!(lease instanceof PulsarPartitionLease) || !this.#leases.has(lease)) {
        throw new DriverError(NAME, 'appendAcross takes current leases of this Pulsar store');
      }
      return lease;
    });
    this.#coordinators ??= new TransactionCoordinators(this.#ctx.client);
    return appendInTransaction(
      {
        coordinators: this.#coordinators,
        names: this.#ctx.names,
        timeoutMs: this.#ctx.transactionTimeoutMs,
        readable: (partition, id) => this.readable(partition, id),
      },
      own,
      requests,
    );
  }

  /**
   * Waits until readers of the partition get `id`: they get nothing past the first message of
   * an open transaction, so this returns once every transaction with a message before `id` is
   * committed or aborted (within the transaction timeout, if every process of the store uses
   * the same one).
   */
  async readable(partition: number, id: MessageId): Promise<void> {
    const topic = this.#ctx.names.partition(partition);
    const waitMs = this.#ctx.transactionTimeoutMs + READABLE_MARGIN_MS;
    const deadline = Date.now() + waitMs;
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      const last = await this.#ctx.log.lastMessageId(topic);
      if (last !== undefined && entryOffset(last) >= entryOffset(id)) return;
      if (Date.now() > deadline) {
        throw new DriverError(
          NAME,
          `partition ${partition}: entry ${id.ledgerId}:${id.entryId} did not become readable within ${waitMs} ms (a transaction before it is still open; is transactionTimeoutMs the same on every process of the store?)`,
        );
      }
      await sleep(wait);
    }
  }

  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.#leases].map((lease) => lease.release()));
    this.#leases.clear();
  }

  /** The head (last event offset) of the partition as of `message`, an entry of it. */
  async headAt(partition: number, message: Message): Promise<bigint | undefined> {
    const kind = kindOf(message);
    if (kind === 'commit') return lastEventOffset(message);
    // A message eventfold did not write says nothing of the head: look at everything before it.
    if (kind !== 'claim') return this.#headBetween(partition, 0n, message.messageId, undefined);
    const head = message.properties[P.head];
    const from = message.properties[P.from];
    const recorded = head === undefined || head === '' ? undefined : BigInt(head);
    const start = from === undefined || from === '' ? 0n : BigInt(from) + ENTRY_SPAN;
    return this.#headBetween(partition, start, message.messageId, recorded);
  }

  /** The claim marker, with the next sequence id of the partition's writer name. */
  async #mark(
    producer: Producer,
    id: string,
    last: Message | undefined,
    head: bigint | undefined,
    publishTime: number,
  ): Promise<{ marker: MessageId; sequenceId: bigint }> {
    let sequenceId = producer.lastSequenceId + 1n;
    for (let tries = 0; tries < MAX_MARKER_TRIES; tries++, sequenceId++) {
      const receipt = await producer.send(Buffer.alloc(0), {
        sequenceId,
        publishTime,
        properties: {
          [P.kind]: 'claim',
          [P.lease]: id,
          [P.head]: head === undefined ? '' : String(head),
          [P.from]: last === undefined ? '' : String(entryOffset(last.messageId)),
        },
      });
      // Deduplication stored a fenced writer's message under this sequence id: take the next.
      if (!receipt.duplicate) return { marker: receipt.messageId, sequenceId };
    }
    throw new DriverError(NAME, `the claim marker of ${producer.topic} was taken for a duplicate ${MAX_MARKER_TRIES} times`);
  }

  /** The last event offset of commits in [from, to], else `fallback`; `seen` gets each entry in that range. */
  async #headBetween(
    partition: number,
    from: bigint,
    to: MessageId,
    fallback: bigint | undefined,
    seen?: (m: Message) => void,
  ): Promise<bigint | undefined> {
    const end = entryOffset(to);
    let head = fallback;
    let at = from;
    while (at <= end) {
      const page = await this.#ctx.log.page(this.#ctx.names.partition(partition), at, 500);
      for (const m of page.messages) {
        if (entryOffset(m.messageId) > end) return head;
        if (entryOffset(m.messageId) < from) continue;
        seen?.(m);
        if (kindOf(m) === 'commit') head = lastEventOffset(m);
      }
      if (page.next <= at || page.end) break;
      at = page.next;
    }
    return head;
  }

  /**
   * What became of a commit that got no receipt: stored at some id, or never (undefined).
   * Everything a lease sent lands before the next owner's claim marker, so reading on from the
   * lease's last entry finds either our commit or another lease's entry first. Fenced, the new
   * owner's marker follows within moments; otherwise (a timeout, a lost connection) nobody else
   * may be writing, so we claim once ourselves, which puts a marker behind whatever we sent.
   */
  async #settle(
    partition: number,
    lease: { id: string; position: MessageId; sequenceId: bigint; fenced: boolean },
  ): Promise<MessageId | undefined> {
    const topic = this.#ctx.names.partition(partition);
    const deadline = Date.now() + (lease.fenced ? FENCED_SETTLE_MS : 0);
    // The broker may refuse a reader for a moment while the topic changes hands (fencing, an
    // ownership move: seen as UnknownError on subscribe): read again until this deadline.
    const readDeadline = Date.now() + SETTLE_READ_MS;
    const readPage = async (at: bigint) => {
      for (;;) {
        try {
          return await this.#ctx.log.page(topic, at, 500);
        } catch (error) {
          if (Date.now() >= readDeadline) throw error;
          await sleep(200);
        }
      }
    };
    let claimed = false;
    for (;;) {
      let at = entryOffset(lease.position) + ENTRY_SPAN;
      for (;;) {
        const page = await readPage(at);
        for (const m of page.messages) {
          if (entryOffset(m.messageId) < at) continue;
          const owner = m.properties[P.lease];
          if (owner === lease.id && m.sequenceId === lease.sequenceId) return m.messageId;
          if (owner !== undefined && owner !== lease.id) return undefined;
        }
        if (page.next <= at || page.end) break;
        at = page.next;
      }
      if (claimed) throw new DriverError(NAME, `partition ${partition}: our own claim marker was not found after it was written`);
      if (Date.now() >= deadline) {
        await (await this.claim(partition)).release();
        claimed = true;
      } else {
        await sleep(100);
      }
    }
  }
}
