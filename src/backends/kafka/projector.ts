// Exactly-once consume-transform-produce from a store's events topic: `kafkaProjector`.
import { hostname } from 'node:os';
import { Admin, Consumer, type Producer, type BaseOptions, type Message, type MessageToProduce } from '@platformatic/kafka';
import { DriverError, EventfoldError, InvalidArgumentError, StoreClosedError } from '../../core/errors.ts';
import type { EventStore } from '../../core/event-store.ts';
import { storeContext, type StoreContext } from '../../core/store-context.ts';
import type { Event } from '../../core/event-type.ts';
import type { RecordedEvent } from '../../core/recorded-event.ts';
import { errorMessage } from '../../core/errors.ts';
import { positiveInt } from '../../core/numbers.ts';
import { withRetries } from '../../core/retry.ts';
import { sleep } from '../../core/sleep.ts';
import { assertGroupName } from '../../core/group-name.ts';
import { ensureTopic, initTransactionalProducer } from './admin.ts';
import { hasApiError, KAFKA as NAME } from './errors.ts';
import { KafkaDriver } from './kafka-driver.ts';
import { PartitionLog, type LogRecord } from './log.ts';
import { storedEvent } from './records.ts';

type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

/** One record a projector handler asks to produce. Strings are written as UTF-8. */
export interface ProjectorRecord {
  readonly topic: string;
  readonly key?: string | Uint8Array | null;
  /** `null` writes a tombstone (for compacted output topics). */
  readonly value: string | Uint8Array | null;
  readonly headers?: Readonly<Record<string, string | Uint8Array>>;
  /** Default: the producer's partitioner over the key (murmur2, like the Java client). */
  readonly partition?: number;
}

/** What a handler returns for one event: nothing, one record or several. */
export type ProjectorOutput = ProjectorRecord | readonly ProjectorRecord[] | undefined | void;

export interface KafkaProjectorOptions<E extends Event> {
  /** Name of the projection; its Kafka consumer group is `<prefix>._projector.<group>`. */
  readonly group: string;
  /** Turns one event into the records to produce. Keep it free of other side effects: a batch may be redone. */
  readonly handle: (event: RecordedEvent<E>) => ProjectorOutput | Promise<ProjectorOutput>;
  /**
   * This process's name within the group, stable across its restarts and unique among the
   * group's live instances ([A-Za-z0-9_-], at most 100). It names the transactional id
   * `<prefix>._projector.<group>.<instance>` and the static group membership. Default: the
   * host name. See `kafkaProjector` for why.
   */
  readonly instance?: string;
  /** Where a group with no committed offset for a partition starts. Default `'beginning'`. */
  readonly start?: 'beginning' | 'end';
  /** Most events per transaction. Default 500. */
  readonly batchSize?: number;
  /** Retries of a failing handler (exponential backoff) before its event goes to the dead letters. Default 3. */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  /** Output topics checked (or created, with `createOutputs`) before the first batch. */
  readonly outputs?: readonly string[];
  /** Create missing output topics, declared or first met in a handler's output. Default: a missing one stops the projector. */
  readonly createOutputs?: { readonly partitions: number; readonly configs?: Readonly<Record<string, string>> };
  /**
   * Transaction timeout: how long the coordinator waits for an instance that died mid-batch
   * before it aborts its transaction, when no restart of that instance fences it first. A
   * batch (handlers included) must finish well within it. Default 30000 ms.
   */
  readonly transactionTimeoutMs?: number;
  /** Group session timeout (the broker's group.min/max.session.timeout.ms bound it). Default 10000 ms. */
  readonly sessionTimeoutMs?: number;
  /** Longest wait for new events before looking again. Default 1000 ms. */
  readonly blockMs?: number;
  readonly signal?: AbortSignal;
  /** Failures the projector recovers from by redoing the batch (rebalances, broker errors). Default: the store's `onBackgroundError`. */
  readonly onError?: (error: unknown) => void;
}

export interface KafkaProjector {
  readonly group: string;
  readonly transactionalId: string;
  readonly deadLetterTopic: string;
  /** Resolves once this instance has fenced its earlier incarnations and joined the group. */
  readonly started: Promise<void>;
  /** Settles when the projector stops: resolved after `stop()`, rejected with the error that stopped it. */
  readonly done: Promise<void>;
  /** Events read in committed batches by this object (dead-lettered ones included). */
  readonly processed: number;
  readonly deadLettered: number;
  /**
   * Resolves once every partition this instance holds is committed up to where the events
   * topic ended (its last stable offset) when this was called; rejects if the projector stops first.
   */
  caughtUp(): Promise<void>;
  /** Stops after the batch in flight (committed, or aborted if it fails) and closes every client. */
  stop(): Promise<void>;
}

/**
 * Exactly-once consume-transform-produce on Kafka: reads the store's events topic
 * (read_committed, as a member of the consumer group `<prefix>._projector.<group>`), runs
 * `handle` on each event and, per batch, writes the handler's records and commits the group's
 * offsets in ONE Kafka transaction (TxnOffsetCommit carrying the group's generation and member
 * id, KIP-447). Either the outputs of a batch and its offsets are committed together or
 * neither is: a process killed mid-batch leaves an open transaction that the coordinator
 * aborts (at once when the instance restarts and fences it, else after
 * `transactionTimeoutMs`), and the batch is redone from the committed offsets, so
 * read_committed readers of the outputs see each record exactly once.
 *
 * An event that cannot be decoded (`EventDecodeError`, `UnknownEventTypeError`), or whose
 * handler still fails after `retries`, goes to the dead-letter topic
 * `<prefix>._projector.<group>.dlq` inside the same transaction (original key, value and
 * headers, plus `ef-dlq-*` headers: stage, error, code, topic, partition, offset, attempts,
 * time), and the projector goes on.
 *
 * Fencing. Since Kafka 2.5 (KIP-447) a zombie is fenced by the group: its TxnOffsetCommit
 * names a generation the group has left behind, fails, and its transaction can only abort; so
 * a transactional id no longer has to be tied to input partitions, only unique among the live
 * instances of the group and stable across restarts of one instance. Stable matters: on start
 * an instance initialises its transactional id (InitProducerId), which bumps the epoch and
 * aborts whatever transaction its killed predecessor left open, before it reads the group's
 * offsets (OffsetFetch with require_stable, which also waits for other instances' pending
 * commits). Hence `instance` (default: the host name). Two live instances with one name fence
 * each other: the one fenced stops with a `DriverError`. The instance also joins the group as a
 * static member (group.instance.id = instance), so a restarted instance takes its partitions
 * back at once instead of waiting for the dead member's session to expire.
 *
 * Reading uses the driver's own read_committed filter (log.ts): @platformatic/kafka's consumer
 * filter keeps one aborted range per producer and fetch, which can let aborted records through.
 */
export function kafkaProjector<E extends Event>(store: EventStore<E>, options: KafkaProjectorOptions<E>): KafkaProjector {
  const context = storeContext<E>(store);
  const driver = context.runtime.driver;
  if (!(driver instanceof KafkaDriver)) {
    throw new InvalidArgumentError(`kafkaProjector needs a store on the kafka driver; this store is on ${driver.name}`);
  }
  return new Projector(context, driver, options);
}

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
  readonly #topics = new Set<string>();
  #resolveStarted!: () => void;
  #replicationFactor = 1;
  #admin: Admin | undefined;
  #log: PartitionLog | undefined;
  #producer: Producer | undefined;
  #consumer: Consumer | undefined;
  /** Producer id and epoch this instance holds, to re-initialise after an error without taking the id from another instance (KIP-588). */
  #held: { id: bigint; epoch: number } | undefined;
  /** Next offset to read, per partition this instance holds, as committed (or skipped past markers). */
  #positions = new Map<number, bigint>();
  /** Generation, member and partitions the positions were loaded for. */
  #membership = '';
  #assigned: number[] = [];
  #rotation = 0;
  #processed = 0;
  #deadLettered = 0;
  #waiters: { heads: Map<number, bigint>; resolve: () => void }[] = [];

  constructor(store: StoreContext<E>, driver: KafkaDriver, options: KafkaProjectorOptions<E>) {
    assertGroupName(options.group);
    if (typeof options.handle !== 'function') throw new InvalidArgumentError('kafkaProjector needs a `handle` function');
    const instance = options.instance ?? defaultInstance();
    if (typeof instance !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(instance)) {
      throw new InvalidArgumentError(`projector instance ${JSON.stringify(instance)} must be 1-100 ASCII letters, digits, "_" or "-"`);
    }
    this.#batchSize = positiveInt(options.batchSize ?? 500, 'batchSize');
    this.#transactionTimeoutMs = positiveInt(options.transactionTimeoutMs ?? 30_000, 'transactionTimeoutMs');
    positiveInt(options.sessionTimeoutMs ?? 10_000, 'sessionTimeoutMs');
    positiveInt(options.blockMs ?? 1000, 'blockMs');
    if ((options.retries ?? 3) < 0 || !Number.isInteger(options.retries ?? 3))
      throw new InvalidArgumentError('retries must be an integer >= 0');
    if (options.start !== undefined && options.start !== 'beginning' && options.start !== 'end') {
      throw new InvalidArgumentError("start must be 'beginning' or 'end'");
    }
    if (options.createOutputs) positiveInt(options.createOutputs.partitions, 'createOutputs.partitions');
    this.#store = store;
    this.#driver = driver;
    this.#options = options;
    this.#instance = instance;
    this.group = options.group;
    this.#groupId = driver.names.projectorGroup(options.group);
    this.transactionalId = driver.names.projectorTransactionalId(options.group, instance);
    this.deadLetterTopic = driver.names.projectorDeadLetters(options.group);
    if (this.deadLetterTopic.length > 249) {
      throw new InvalidArgumentError(
        `dead-letter topic ${this.deadLetterTopic} is longer than Kafka's 249 characters: use a shorter prefix or group`,
      );
    }
    for (const topic of options.outputs ?? []) this.#checkOutputName(topic);
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
    const reached = new Promise<void>((resolve) => this.#waiters.push({ heads, resolve }));
    this.#checkWaiters();
    await Promise.race([reached, stopped]);
  }

  async #main(): Promise<void> {
    const { detach, client, replicationFactor } = this.#driver.attach(`projector-${this.group}`, () => this.stop());
    this.#replicationFactor = replicationFactor;
    try {
      // Opens the driver: the events topic exists from here on.
      await this.#store.runtime.use(async () => undefined);
      this.#admin = new Admin({ ...client, clientId: `eventfold-projector-${this.group}` });
      this.#log = new PartitionLog(this.#admin);
      for (const { topic } of this.#driver.layout.topics) await this.#log.describe(topic, this.#driver.layout.perTopic);
      await this.#prepareTopics();
      // Fence first: InitProducerId aborts what a killed predecessor left open, so the offsets
      // read next are final.
      this.#producer = await this.#initProducer(client, undefined);
      this.#consumer = new Consumer({
        ...client,
        clientId: `eventfold-projector-${this.group}`,
        groupId: this.#groupId,
        groupInstanceId: this.#instance,
        sessionTimeout: this.#options.sessionTimeoutMs ?? 10_000,
        rebalanceTimeout: this.#options.sessionTimeoutMs ?? 10_000,
        heartbeatInterval: Math.max(100, Math.floor((this.#options.sessionTimeoutMs ?? 10_000) / 5)),
      });
      // A failed background rejoin is emitted as 'error': without a listener it would crash the process.
      this.#consumer.on('error', (error: unknown) => (this.#options.onError ?? this.#store.onBackgroundError)(error));
      for (const { topic } of this.#driver.layout.topics) this.#consumer.topics.track(topic);
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
        if (!this.#producer) this.#producer = await this.#initProducer(client, this.#held);
        if (!this.#consumer!.isActive()) await this.#consumer!.joinGroup({});
        worked = await this.#batch();
        failures = 0;
      } catch (error) {
        if (error === STOPPED) break;
        if (isFatal(error)) throw error;
        failures++;
        if (failures > 10)
          throw new DriverError(NAME, `projector "${this.group}": 10 batches in a row failed; last error: ${errorMessage(error)}`, error);
        (this.#options.onError ?? this.#store.onBackgroundError)(error);
        // Whatever the failed batch did is aborted or committed as a whole: read the offsets
        // back from the group rather than trusting memory.
        this.#membership = '';
        const producer = this.#producer;
        this.#producer = undefined;
        await producer?.close().catch(() => undefined);
        await sleep(Math.min(5000, 50 * 2 ** failures), stop);
        continue;
      }
      if (!worked && !stop.aborted) await this.#waitForEvents(stop);
    }
  }

  /** One batch: read, project, produce, commit the offsets, all in one transaction. False when there was nothing to do. */
  async #batch(): Promise<boolean> {
    const consumer = this.#consumer!;
    const log = this.#log!;
    const layout = this.#driver.layout;
    const member = {
      groupId: consumer.groupId,
      generationId: consumer.generationId,
      memberId: consumer.memberId,
      coordinatorId: consumer.coordinatorId,
      // Store partitions (a topic per category: see layout.ts).
      partitions: (consumer.assignments ?? [])
        .flatMap((a) => a.partitions.map((p) => layout.partitionFor(a.topic, p)))
        .filter((p): p is number => p !== undefined)
        .sort((a, b) => a - b),
    };
    const membership = `${member.generationId}/${member.memberId}/${member.partitions.join(',')}`;
    if (membership !== this.#membership) {
      this.#positions = await this.#committedPositions(member.partitions);
      this.#assigned = member.partitions;
      this.#membership = membership;
      this.#checkWaiters();
    }
    if (member.partitions.length === 0) return false;
    const order = rotate(member.partitions, this.#rotation++);
    const advanced = new Map<number, bigint>();
    let budget = this.#batchSize;
    let read = 0;
    let deadLettered = 0;
    let transaction: Transaction | undefined;
    try {
      for (const partition of order) {
        if (budget <= 0) break;
        const at = this.#positions.get(partition)!;
        const page = await log.fetch(...this.#where(partition), at);
        if (page.logStart > at) {
          advanced.set(partition, page.logStart);
          continue;
        }
        const taken = page.records.slice(0, budget);
        const end = taken.length < page.records.length ? taken[taken.length - 1]!.offset + 1n : page.next;
        if (end <= at) continue;
        const messages: MessageToProduce[] = [];
        for (const record of taken) {
          const projected = await this.#project(record, partition);
          if (projected.deadLettered) deadLettered++;
          messages.push(...projected.messages);
        }
        budget -= taken.length;
        read += taken.length;
        // Each partition's slice goes out before the next is handled: the transaction holds
        // them all until the commit below.
        if (messages.length > 0) {
          await this.#ensureTopics(messages);
          transaction ??= await this.#producer!.beginTransaction();
          await transaction.send({ messages });
        }
        advanced.set(partition, end);
      }
      if (advanced.size === 0) return false;
      if (read > 0) {
        if (member.coordinatorId === null || member.memberId === null)
          throw new DriverError(NAME, `projector "${this.group}" is not a member of its group`);
        transaction ??= await this.#producer!.beginTransaction();
        await transaction.addConsumer(consumer);
        const metadata = {
          consumer: {
            groupId: member.groupId,
            generationId: member.generationId,
            memberId: member.memberId,
            coordinatorId: member.coordinatorId,
          },
        };
        // One TxnOffsetCommit per partition; the library runs them one at a time.
        for (const [partition, end] of advanced) await transaction.addOffset(offsetMessage(...this.#where(partition), end - 1n, metadata));
        await transaction.commit();
      }
    } catch (error) {
      if (transaction && !transaction.completed) {
        // Abort now rather than hold read_committed readers back until the timeout; if the
        // abort fails too, the producer is re-initialised (which aborts it) by the loop.
        await transaction.abort().catch(() => undefined);
      }
      throw error;
    }
    for (const [partition, end] of advanced) this.#positions.set(partition, end);
    this.#processed += read;
    this.#deadLettered += deadLettered;
    this.#checkWaiters();
    return true;
  }

  /** The records one event record becomes: the handler's, or one dead letter. */
  async #project(record: LogRecord, partition: number): Promise<{ messages: MessageToProduce[]; deadLettered: boolean }> {
    const stored = storedEvent(record, partition);
    // Not an event eventfold wrote (no envelope): nothing to project.
    if (!stored) return { messages: [], deadLettered: false };
    let event: RecordedEvent<E>;
    try {
      event = this.#store.codec.decode(stored);
    } catch (error) {
      return { messages: [this.#deadLetter(record, partition, 'decode', error, 1)], deadLettered: true };
    }
    const stop = this.#stop.signal;
    const outcome = await withRetries(async () => toMessages(await this.#options.handle(event)), {
      retries: this.#options.retries ?? 3,
      delayMs: this.#options.retryDelayMs ?? 50,
      signal: stop,
    });
    if (outcome.ok) return { messages: outcome.value, deadLettered: false };
    // Retries cut short by stop: the batch is abandoned (aborted), not dead-lettered.
    if (stop.aborted) throw STOPPED;
    return { messages: [this.#deadLetter(record, partition, 'handle', outcome.error, outcome.attempts)], deadLettered: true };
  }

  #deadLetter(record: LogRecord, partition: number, stage: 'decode' | 'handle', error: unknown, attempts: number): MessageToProduce {
    const headers = new Map<Buffer, Buffer>();
    for (const [k, v] of record.headers) if (k) headers.set(k, v ?? Buffer.alloc(0));
    const put = (name: string, value: string): void => {
      headers.set(Buffer.from(name), Buffer.from(value, 'utf8'));
    };
    put('ef-dlq-stage', stage);
    put('ef-dlq-error', errorMessage(error).slice(0, 16_384));
    put('ef-dlq-code', error instanceof EventfoldError ? error.code : error instanceof Error ? error.name : typeof error);
    const [topic, topicPartition] = this.#where(partition);
    put('ef-dlq-topic', topic);
    put('ef-dlq-partition', String(topicPartition));
    put('ef-dlq-offset', String(record.offset));
    put('ef-dlq-attempts', String(attempts));
    put('ef-dlq-time', String(Date.now()));
    return {
      topic: this.deadLetterTopic,
      partition,
      ...(record.key ? { key: record.key } : {}),
      ...(record.value ? { value: record.value } : {}),
      headers,
      timestamp: record.timestamp,
    };
  }

  /** The group's committed offsets for `partitions`, waiting out other instances' pending transactions. */
  async #committedPositions(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const positions = new Map<number, bigint>();
    if (partitions.length === 0) return positions;
    const layout = this.#driver.layout;
    const byTopic = new Map<string, number[]>();
    for (const partition of partitions) {
      const [topic, topicPartition] = this.#where(partition);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), topicPartition]);
    }
    const deadline = Date.now() + this.#transactionTimeoutMs + 10_000;
    let listed: Awaited<ReturnType<Admin['listConsumerGroupOffsets']>>;
    for (let attempt = 0; ; attempt++) {
      try {
        listed = await this.#admin!.listConsumerGroupOffsets({
          groups: [{ groupId: this.#groupId, topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
          requireStable: true,
        });
        break;
      } catch (error) {
        const unstable = hasApiError(error, 'UNSTABLE_OFFSET_COMMIT');
        if (!unstable || Date.now() > deadline || this.#stop.signal.aborted) throw error;
        await sleep(Math.min(500, 20 * 2 ** attempt), this.#stop.signal);
      }
    }
    const committed = new Map<number, bigint>();
    for (const group of listed) {
      for (const topic of group.topics) {
        for (const p of topic.partitions) {
          const partition = layout.partitionFor(topic.name, p.partitionIndex);
          if (partition !== undefined && p.committedOffset >= 0n) committed.set(partition, p.committedOffset);
        }
      }
    }
    for (const partition of partitions) {
      const offset = committed.get(partition);
      if (offset !== undefined) positions.set(partition, offset);
      else positions.set(partition, this.#options.start === 'end' ? await this.#log!.lastStable(...this.#where(partition)) : 0n);
    }
    return positions;
  }

  /**
   * Initialises the transactional id. `held` undefined: take it over from whoever holds it
   * (our killed predecessor), aborting its open transaction. `held` set: re-initialise our own
   * epoch (KIP-588); the coordinator answers PRODUCER_FENCED if another instance took it.
   * CONCURRENT_TRANSACTIONS (an abort still completing) is retried with a fresh client.
   */
  async #initProducer(client: BaseOptions, held: { id: bigint; epoch: number } | undefined): Promise<Producer> {
    const options = {
      ...client,
      clientId: `eventfold-projector-${this.group}`,
      transactionalId: this.transactionalId,
      idempotent: true,
      producerId: held?.id ?? -1n,
      producerEpoch: held?.epoch ?? -1,
      timeout: this.#transactionTimeoutMs,
    };
    const producer = await initTransactionalProducer(options, Date.now() + this.#transactionTimeoutMs + 10_000, (error) => {
      if (held && hasApiError(error, 'PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH')) {
        throw fatal(
          new DriverError(
            NAME,
            `projector "${this.group}": another instance took over transactional id ${this.transactionalId}; give each live instance its own \`instance\``,
            error,
          ),
        );
      }
    });
    if (producer.producerId === undefined || producer.producerEpoch === undefined) {
      await producer.close().catch(() => undefined);
      throw new DriverError(NAME, 'InitProducerId returned no producer id');
    }
    this.#held = { id: producer.producerId, epoch: producer.producerEpoch };
    return producer;
  }

  async #waitForEvents(stop: AbortSignal): Promise<void> {
    const blockMs = this.#options.blockMs ?? 1000;
    // Sparse arrays per topic: waitAny visits only the partitions this instance holds.
    const from = new Map<string, bigint[]>();
    for (const partition of this.#assigned) {
      const [topic, topicPartition] = this.#where(partition);
      if (!from.has(topic)) from.set(topic, []);
      from.get(topic)![topicPartition] = this.#positions.get(partition)!;
    }
    const aborted = new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      stop.addEventListener('abort', () => resolve(), { once: true });
    });
    const wait =
      this.#assigned.length === 0
        ? sleep(blockMs, stop)
        : Promise.race([...from].map(([topic, offsets]) => this.#log!.waitAny(topic, offsets, blockMs))).catch(() => sleep(blockMs, stop));
    await Promise.race([wait, aborted]);
  }

  async #prepareTopics(): Promise<void> {
    const admin = this.#admin!;
    const existing = new Set(await admin.listTopics());
    for (const topic of existing) this.#topics.add(topic);
    if (!existing.has(this.deadLetterTopic)) {
      // Dead letters must not expire unseen: kept like the events.
      await this.#createTopic(this.deadLetterTopic, this.#driver.partitions, {
        'cleanup.policy': 'delete',
        'retention.ms': '-1',
        'retention.bytes': '-1',
      });
    }
    const missing = (this.#options.outputs ?? []).filter((t) => !existing.has(t));
    await this.#createOutputs(missing);
  }

  /** Every topic these messages go to exists (or is created with `createOutputs`). */
  async #ensureTopics(messages: readonly MessageToProduce[]): Promise<void> {
    const unknown = [...new Set(messages.map((m) => m.topic).filter((t) => !this.#topics.has(t)))];
    if (unknown.length === 0) return;
    for (const topic of unknown) this.#checkOutputName(topic);
    const existing = new Set(await this.#admin!.listTopics());
    for (const topic of existing) this.#topics.add(topic);
    await this.#createOutputs(unknown.filter((t) => !existing.has(t)));
  }

  async #createOutputs(missing: readonly string[]): Promise<void> {
    if (missing.length === 0) return;
    const create = this.#options.createOutputs;
    if (!create) {
      throw new InvalidArgumentError(
        `projector "${this.group}": output topic${missing.length > 1 ? 's' : ''} ${missing.map((t) => JSON.stringify(t)).join(', ')} do${missing.length > 1 ? '' : 'es'} not exist; create ${missing.length > 1 ? 'them' : 'it'}, or pass createOutputs`,
      );
    }
    for (const topic of missing) await this.#createTopic(topic, create.partitions, create.configs ?? {});
  }

  async #createTopic(topic: string, partitions: number, configs: Readonly<Record<string, string>>): Promise<void> {
    await ensureTopic(this.#admin!, { topic, partitions, replicas: this.#replicationFactor, configs });
    this.#topics.add(topic);
  }

  #checkOutputName(topic: unknown): void {
    if (typeof topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
      throw new InvalidArgumentError(`projector "${this.group}": ${JSON.stringify(topic)} is not a valid Kafka topic name`);
    }
    const names = this.#driver.names;
    const owned = topic === names.snapshots || topic === this.deadLetterTopic || this.#driver.layout.partitionFor(topic, 0) !== undefined;
    if (owned) {
      throw new InvalidArgumentError(`projector "${this.group}": cannot write to ${topic}, which the store owns`);
    }
  }

  #checkWaiters(): void {
    // Until the positions of an assignment are loaded there is nothing to compare.
    if (this.#membership === '') return;
    this.#waiters = this.#waiters.filter((w) => {
      const done = this.#assigned.every((partition) => {
        const at = this.#positions.get(partition);
        return at !== undefined && at >= (w.heads.get(partition) ?? 0n);
      });
      if (done) w.resolve();
      return !done;
    });
  }

  /** Topic and Kafka partition of a store partition. */
  #where(partition: number): [string, number] {
    const at = this.#driver.layout.at(partition);
    return [at.topic, at.partition];
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

/** Thrown inside a batch when `stop()` cut a handler's retries short: abort, do not dead-letter. */
const STOPPED: unique symbol = Symbol('stopped');

/** Errors no retry can fix (another instance holds our transactional id): the projector stops. */
const fatalErrors = new WeakSet<object>();
function fatal<T extends object>(error: T): T {
  fatalErrors.add(error);
  return error;
}

function isFatal(error: unknown): boolean {
  return (
    error instanceof InvalidArgumentError ||
    error instanceof StoreClosedError ||
    (typeof error === 'object' && error !== null && fatalErrors.has(error))
  );
}

function toMessages(output: ProjectorOutput): MessageToProduce[] {
  if (output === undefined || output === null) return [];
  const list: readonly unknown[] = Array.isArray(output) ? output : [output];
  return list.map((r, i) => {
    const bad = (why: string): never => {
      throw new InvalidArgumentError(`handler output ${i}: ${why} (expected { topic, value, key?, headers?, partition? })`);
    };
    if (typeof r !== 'object' || r === null) return bad('not an object');
    const record = r as Partial<Record<keyof ProjectorRecord, unknown>>;
    if (typeof record.topic !== 'string' || record.topic === '') return bad('topic must be a non-empty string');
    const message: MessageToProduce = { topic: record.topic };
    if (record.key !== undefined && record.key !== null) message.key = bytes(record.key) ?? bad('key must be a string or bytes');
    if (record.value !== null) message.value = bytes(record.value) ?? bad('value must be a string, bytes or null');
    if (record.partition !== undefined) {
      if (!Number.isInteger(record.partition) || (record.partition as number) < 0) bad('partition must be an integer >= 0');
      message.partition = record.partition as number;
    }
    if (record.headers !== undefined) {
      if (typeof record.headers !== 'object' || record.headers === null) return bad('headers must be an object');
      const headers = new Map<Buffer, Buffer>();
      for (const [k, v] of Object.entries(record.headers))
        headers.set(Buffer.from(k, 'utf8'), bytes(v) ?? bad(`header ${k} must be a string or bytes`));
      message.headers = headers;
    }
    return message;
  });
}

function bytes(value: unknown): Buffer | undefined {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/** A stand-in for a consumed message: TxnOffsetCommit needs only its topic, partition, offset and group metadata. */
function offsetMessage(topic: string, partition: number, offset: bigint, metadata: Record<string, unknown>): Message {
  const empty = Buffer.alloc(0);
  return {
    topic,
    partition,
    offset,
    key: empty,
    value: empty,
    headers: new Map(),
    timestamp: 0n,
    metadata,
    commit: () => undefined,
    toJSON: () => ({ key: empty, value: empty, headers: [], topic, partition, timestamp: '0', offset: String(offset), metadata }),
  };
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const n = by % list.length;
  return [...list.slice(n), ...list.slice(0, n)];
}

function defaultInstance(): string {
  const name = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 100);
  return name === '' ? 'default' : name;
}
