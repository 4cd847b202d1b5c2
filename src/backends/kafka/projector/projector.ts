// `kafkaProjector`: exactly-once consume-transform-produce from a store's events topics.
// Design (transactions, dead letters, fencing, read_committed): docs/architecture/kafka.md#projector
import { Admin, type BaseOptions, type Consumer, type MessageToProduce, type Producer } from '@platformatic/kafka';
import { DriverError, errorMessage, InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import type { EventStore } from '../../../core/event-store.ts';
import { sleep } from '../../../core/sleep.ts';
import { type StoreContext, storeContext } from '../../../core/store-context.ts';
import { ATTR, type OpenSpan } from '../../../core/telemetry.ts';
import { KAFKA } from '../errors.ts';
import { KafkaDriver } from '../kafka-driver.ts';
import { PartitionLog } from '../log.ts';
import { deadLetterTopicName } from './dead-letters.ts';
import { isFatal, STOPPED } from './failures.ts';
import { commitMetadata, currentMember, groupConsumer } from './group-member.ts';
import { committedPositions, type OffsetSource, offsetMessage } from './offsets.ts';
import { checkOptions, type KafkaProjector, type KafkaProjectorOptions } from './options.ts';
import { checkOutputName, type OutputOwner, OutputTopics } from './output-topics.ts';
import { HeldPositions } from './positions.ts';
import { type HeldProducerId, initProducer, type Transaction } from './producer.ts';
import { Projection } from './projection.ts';
import { topicPartitionOf } from './topic-partition.ts';
import { waitForEvents } from './wait-for-events.ts';

/**
 * Exactly-once consume-transform-produce on Kafka: reads the store's events topics as a member
 * of the consumer group `<prefix>._projector.<group>`, runs `handle` on each event and, per
 * batch, writes the handler's records and commits the group's offsets in ONE Kafka transaction.
 * Events that cannot be projected go to `<prefix>._projector.<group>.dlq`. Why and how
 * (fencing, the `instance` name, read_committed): docs/architecture/kafka.md#projector.
 */
export function kafkaProjector<E extends Event>(store: EventStore<E>, options: KafkaProjectorOptions<E>): KafkaProjector {
  const context = storeContext<E>(store);
  const driver = context.runtime.driver;
  if (!(driver instanceof KafkaDriver)) {
    throw new InvalidArgumentError(`kafkaProjector needs a store on the kafka driver; this store is on ${driver.name}`);
  }
  return new Projector(context, driver, options);
}

/** One projector instance: its lifecycle (start, stop, caughtUp) and the batch loop. */
class Projector<E extends Event> implements KafkaProjector {
  readonly group: string;
  readonly transactionalId: string;
  readonly deadLetterTopic: string;
  readonly started: Promise<void>;
  readonly done: Promise<void>;
  readonly #store: StoreContext<E>;
  readonly #driver: KafkaDriver;
  readonly #options: KafkaProjectorOptions<E>;
  readonly #instance: string;
  readonly #groupId: string;
  readonly #batchSize: number;
  readonly #transactionTimeoutMs: number;
  readonly #stop = new AbortController();
  readonly #owner: OutputOwner;
  readonly #projection: Projection<E>;
  readonly #positions = new HeldPositions();
  #resolveStarted!: () => void;
  #admin: Admin | undefined;
  #log: PartitionLog | undefined;
  #outputs: OutputTopics | undefined;
  #offsets: OffsetSource | undefined;
  #producer: Producer | undefined;
  #consumer: Consumer | undefined;
  /** Producer id and epoch this instance holds, to re-initialise after an error without taking the id from another instance (KIP-588). */
  #producerId: HeldProducerId | undefined;
  #rotation = 0;
  #processed = 0;
  #deadLettered = 0;

  constructor(store: StoreContext<E>, driver: KafkaDriver, options: KafkaProjectorOptions<E>) {
    const settings = checkOptions(options);
    this.#batchSize = settings.batchSize;
    this.#transactionTimeoutMs = settings.transactionTimeoutMs;
    this.#store = store;
    this.#driver = driver;
    this.#options = options;
    this.#instance = settings.instance;
    this.group = options.group;
    this.#groupId = driver.names.projectorGroup(options.group);
    this.transactionalId = driver.names.projectorTransactionalId(options.group, settings.instance);
    this.deadLetterTopic = deadLetterTopicName(driver.names, options.group);
    this.#owner = { group: this.group, deadLetterTopic: this.deadLetterTopic, driver };
    for (const topic of options.outputs ?? []) checkOutputName(topic, this.#owner);
    this.#projection = new Projection(store, options, driver.layout, this.deadLetterTopic, this.#stop.signal);
    this.started = new Promise((resolve) => (this.#resolveStarted = resolve));
    options.signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
    this.done = this.#main();
    // Callers that only await `started` or `caughtUp()` must not see an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get processed(): number {
    return this.#processed;
  }

  get deadLettered(): number {
    return this.#deadLettered;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.done.catch(() => undefined);
  }

  async caughtUp(): Promise<void> {
    const stopped = this.done.then(() => {
      throw new InvalidArgumentError(`projector "${this.group}" stopped before it caught up`);
    });
    stopped.catch(() => undefined);
    await Promise.race([this.started, stopped]);
    const log = this.#log!;
    const heads = new Map<number, bigint>();
    for (let partition = 0; partition < this.#driver.partitions; partition++) {
      heads.set(partition, await log.lastStable(...this.#where(partition)));
    }
    await Promise.race([this.#positions.reach(heads), stopped]);
  }

  async #main(): Promise<void> {
    const { detach, client, replicationFactor } = this.#driver.attach(`projector-${this.group}`, () => this.stop());
    try {
      // Opens the driver: the events topic exists from here on.
      await this.#store.runtime.open();
      this.#admin = new Admin({ ...client, clientId: `eventfold-projector-${this.group}` });
      this.#log = new PartitionLog(this.#admin);
      this.#outputs = new OutputTopics(this.#admin, this.#owner, this.#options, replicationFactor);
      this.#offsets = {
        admin: this.#admin,
        log: this.#log,
        layout: this.#driver.layout,
        groupId: this.#groupId,
        options: this.#options,
        transactionTimeoutMs: this.#transactionTimeoutMs,
        stop: this.#stop.signal,
      };
      for (const { topic } of this.#driver.layout.topics) await this.#log.describe(topic, this.#driver.layout.perTopic);
      await this.#outputs.prepare();
      // Fence first: InitProducerId aborts what a killed predecessor left open, so the offsets
      // read next are final.
      await this.#initProducer(client);
      const sessionTimeoutMs = this.#options.sessionTimeoutMs ?? 10_000;
      const consumerOptions = { group: this.group, groupId: this.#groupId, instance: this.#instance, sessionTimeoutMs };
      this.#consumer = groupConsumer(client, this.#driver.layout, { ...consumerOptions, onError: (error) => this.#report(error) });
      await this.#consumer.joinGroup({});
      this.#resolveStarted();
      await this.#loop(client);
    } finally {
      detach();
      await this.#closeClients();
    }
  }

  async #loop(client: BaseOptions): Promise<void> {
    const stop = this.#stop.signal;
    let failures = 0;
    while (!stop.aborted) {
      let worked: boolean;
      try {
        // After a failure: a fresh producer on our own epoch (aborting anything left open), and
        // back into the group if the background rejoin gave up.
        if (!this.#producer) await this.#initProducer(client);
        if (!this.#consumer!.isActive()) await this.#consumer!.joinGroup({});
        worked = await this.#batch();
        failures = 0;
      } catch (error) {
        if (error === STOPPED) break;
        if (isFatal(error)) throw error;
        failures++;
        if (failures > 10)
          throw new DriverError(KAFKA, `projector "${this.group}": 10 batches in a row failed; last error: ${errorMessage(error)}`, error);
        this.#report(error);
        // Whatever the failed batch did is aborted or committed as a whole: read the offsets
        // back from the group rather than trusting memory.
        this.#positions.forget();
        const producer = this.#producer;
        this.#producer = undefined;
        await producer?.close().catch(() => undefined);
        await sleep(Math.min(5000, 50 * 2 ** failures), stop);
        continue;
      }
      if (!worked && !stop.aborted)
        await waitForEvents(this.#log!, this.#driver.layout, this.#positions, this.#options.blockMs ?? 1000, stop);
    }
  }

  /** One batch: read, project, produce, commit the offsets, all in one transaction. False when there was nothing to do. */
  async #batch(): Promise<boolean> {
    const consumer = this.#consumer!;
    const log = this.#log!;
    const member = currentMember(consumer, this.#driver.layout);
    if (!this.#positions.isLoadedFor(member.membership)) {
      this.#positions.load(member.membership, member.partitions, await committedPositions(this.#offsets!, member.partitions));
    }
    if (member.partitions.length === 0) return false;
    const order = rotate(member.partitions, this.#rotation++);
    const advanced = new Map<number, bigint>();
    let budget = this.#batchSize;
    let read = 0;
    let deadLettered = 0;
    let transaction: Transaction | undefined;
    // Opened at the first partition with events (an idle poll makes no span), dated from here.
    const startedAt = Date.now();
    let span: OpenSpan | undefined;
    try {
      for (const partition of order) {
        if (budget <= 0) break;
        const at = this.#positions.at(partition);
        const page = await log.fetch(...this.#where(partition), at);
        if (page.logStart > at) {
          advanced.set(partition, page.logStart);
          continue;
        }
        const taken = page.records.slice(0, budget);
        const end = taken.length < page.records.length ? taken[taken.length - 1]!.offset + 1n : page.next;
        if (end <= at) continue;
        const messages: MessageToProduce[] = [];
        span ??= this.#store.telemetry.begin('eventfold.projection.batch', 'consumer', this.#spanAttributes(), startedAt);
        for (const record of taken) {
          const projected = await span.run(() => this.#projection.project(record, partition));
          if (projected.deadLettered) deadLettered++;
          messages.push(...projected.messages);
        }
        budget -= taken.length;
        read += taken.length;
        // Each partition's slice goes out before the next is handled: the transaction holds
        // them all until the commit below.
        if (messages.length > 0) {
          await this.#outputs!.ensure(messages);
          transaction ??= await this.#producer!.beginTransaction();
          await transaction.send({ messages });
        }
        advanced.set(partition, end);
      }
      if (advanced.size === 0) return false;
      if (read > 0) {
        const metadata = commitMetadata(member, this.group);
        transaction ??= await this.#producer!.beginTransaction();
        await transaction.addConsumer(consumer);
        // One TxnOffsetCommit per partition; the library runs them one at a time.
        for (const [partition, end] of advanced) await transaction.addOffset(offsetMessage(...this.#where(partition), end - 1n, metadata));
        await transaction.commit();
      }
    } catch (error) {
      span?.end(error);
      if (transaction && !transaction.completed) {
        // Abort now rather than hold read_committed readers back until the timeout; if the
        // abort fails too, the producer is re-initialised (which aborts it) by the loop.
        await transaction.abort().catch(() => undefined);
      }
      throw error;
    }
    if (span) {
      span.setAttribute(ATTR.eventCount, read);
      span.setAttribute(ATTR.deadLettered, deadLettered);
      span.end();
    }
    // Counted once committed: an aborted batch's dead letters are retried with it.
    if (deadLettered > 0) this.#store.telemetry.deadLettered(this.group, 'kafka_projector', deadLettered);
    this.#processed += read;
    this.#deadLettered += deadLettered;
    this.#positions.advance(advanced);
    return true;
  }

  /** Claims the transactional id: from whoever holds it on start, on our own epoch after a failure. */
  async #initProducer(client: BaseOptions): Promise<void> {
    const identity = { group: this.group, transactionalId: this.transactionalId, transactionTimeoutMs: this.#transactionTimeoutMs };
    const { producer, held } = await initProducer(client, identity, this.#producerId);
    this.#producerId = held;
    this.#producer = producer;
  }

  #spanAttributes(): Record<string, string | number> {
    return {
      [ATTR.operationType]: 'process',
      [ATTR.projection]: this.group,
      [ATTR.group]: this.#groupId,
      [ATTR.projectionTarget]: 'kafka',
    };
  }

  #report(error: unknown): void {
    (this.#options.onError ?? this.#store.onBackgroundError)(error);
  }

  #where(partition: number): [string, number] {
    return topicPartitionOf(this.#driver.layout, partition);
  }

  async #closeClients(): Promise<void> {
    // Leave the group first so another instance takes the partitions without waiting.
    await this.#consumer?.close().catch(() => undefined);
    await this.#producer?.close().catch(() => undefined);
    await this.#admin?.close().catch(() => undefined);
    this.#consumer = undefined;
    this.#producer = undefined;
    this.#admin = undefined;
  }
}

/** `list` turned left by `by` places: each batch starts on another partition, so none starves. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const shift = by % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}
