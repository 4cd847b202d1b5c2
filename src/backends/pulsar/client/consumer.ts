// A consumer of one topic partition: SUBSCRIBE (Exclusive, Shared or Failover; durable, or a
// non-durable reader from a message id), flow control with permits, receive, ack, negative
// ack / redelivery, seek by message id or publish time, GetLastMessageId, and resubscription
// after CLOSE_CONSUMER (which the broker sends after every seek) or a lost connection.
// Modelled on pulsar-client-go's consumer_partition.go. Over 400 lines on purpose: one state
// machine (queue, permits, epoch, generation) that every one of those operations changes;
// split, they would share its private state through a wider interface.

import { create, isFieldSet } from '@bufbuild/protobuf';
import { Backoff, sleep } from './backoff.ts';
import { type EntryMessage, entryMessages } from './batch.ts';
import type { Connection, ConnectionSource } from './connection.ts';
import {
  ClosedError,
  ConnectionClosedError,
  isRetriable,
  ProtocolError,
  PulsarClientError,
  PulsarServerError,
  PulsarTimeoutError,
} from './errors.ts';
import { command, type Frame } from './frame.ts';
import type { ConsumerOptions, Message, SubscriptionType } from './consumer-types.ts';
import type { TxnId } from './transactions.ts';
import { compareMessageIds, EARLIEST, LATEST, type MessageId, toMessageId, toMessageIdData } from './message-id.ts';
import {
  BaseCommand_Type as T,
  CommandAck_AckType as AckType,
  CommandAckResponseSchema,
  CommandAckSchema,
  CommandCloseConsumerSchema,
  CommandFlowSchema,
  CommandGetLastMessageIdSchema,
  CommandRedeliverUnacknowledgedMessagesSchema,
  CommandSeekSchema,
  CommandSubscribe_InitialPosition as InitialPosition,
  CommandSubscribe_SubType as SubType,
  CommandSubscribeSchema,
  CommandUnsubscribeSchema,
  ServerError,
} from './proto/PulsarApi_pb.ts';

export type { ConsumerOptions, Message, SubscriptionType } from './consumer-types.ts';

interface Queued {
  readonly message: Message;
  readonly generation: number;
}

const SUB_TYPES: Record<SubscriptionType, SubType> = { Exclusive: SubType.Exclusive, Shared: SubType.Shared, Failover: SubType.Failover };

type State = 'connecting' | 'ready' | 'closed' | 'failed';

export class Consumer {
  readonly topic: string;
  readonly subscription: string;
  readonly id: bigint;
  /** The last reached-end-of-topic notice (a terminated topic). */
  endOfTopic = false;
  private state: State = 'connecting';
  private failure: Error | undefined;
  private conn: Connection | undefined;
  /** Bumped on every (re)subscription: messages of an older one are stale. */
  private generation = 0;
  private readonly queue: Queued[] = [];
  private readonly waiters: { resolve(m: Message): void; reject(e: Error): void }[] = [];
  /** Called (and dropped) when a message is queued: see whenQueued(). */
  private readonly watchers = new Set<() => void>();
  private permits = 0;
  /** Messages taken by receive() so far, and (maxMessages) what this subscription may still be sent and was granted. */
  private taken = 0;
  private budget = Number.POSITIVE_INFINITY;
  private granted = 0;
  private lastDequeued: MessageId | undefined;
  private seekStart: MessageId | undefined;
  /** A reader drops messages at or before this id (its exclusive start). */
  private skipUpTo: MessageId | undefined;
  private epoch = 0n;
  /** Batched entries whose messages are not all acked yet: entry key → unacked batch indexes. */
  private readonly batches = new Map<string, Set<number>>();
  private readonly options: ConsumerOptions;
  private readonly client: ConnectionSource;
  private readonly backoff = new Backoff();
  private readonly stop = new AbortController();
  private readonly onClosed: () => void;
  private readonly firstReady: Promise<void>;

  constructor(client: ConnectionSource, id: bigint, options: ConsumerOptions, onClosed: () => void) {
    this.client = client;
    this.id = id;
    this.options = options;
    this.topic = options.topic;
    this.subscription = options.subscription;
    this.onClosed = onClosed;
    this.firstReady = this.subscribe(true);
  }

  ready(): Promise<void> {
    return this.firstReady;
  }

  private get queueSize(): number {
    return this.options.receiverQueueSize ?? 1000;
  }

  /** The next message; rejects PulsarTimeoutError after `timeoutMs` (default: wait). */
  receive(timeoutMs?: number): Promise<Message> {
    if (this.state === 'closed') return Promise.reject(new ClosedError(`consumer of ${this.topic} is closed`));
    if (this.state === 'failed') return Promise.reject(this.failure!);
    const next = this.queue.shift();
    if (next !== undefined) return Promise.resolve(this.dequeued(next.message));
    return new Promise<Message>((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new PulsarTimeoutError(`no message from ${this.topic} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter.resolve = (m) => {
          clearTimeout(timer);
          resolve(m);
        };
        waiter.reject = (e) => {
          clearTimeout(timer);
          reject(e);
        };
      }
    });
  }

  /** Messages received from the broker and not yet taken by receive(). */
  get queued(): number {
    return this.queue.length;
  }

  /** Closed, or failed for good (a resubscribe the broker refused): nothing more will come. */
  get ended(): boolean {
    return this.state === 'closed' || this.state === 'failed';
  }

  /** The next queued message, or undefined when none is queued (never waits). */
  tryReceive(): Message | undefined {
    if (this.state === 'closed' || this.state === 'failed') return undefined;
    const next = this.queue.shift();
    return next === undefined ? undefined : this.dequeued(next.message);
  }

  /**
   * Resolves once a message is queued (at once if one is), or after `timeoutMs`, or when the
   * consumer closes or fails meanwhile; takes nothing, so several consumers can be waited on
   * together.
   */
  whenQueued(timeoutMs: number): Promise<void> {
    if (this.queue.length > 0) return Promise.resolve();
    // Already ended: nothing will come; wait the timeout out, so a loop that waits here and
    // does not look at `ended` idles instead of spinning (it starved the event loop).
    if (this.ended) return sleep(timeoutMs);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.watchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.watchers.add(done);
    });
  }

  /**
   * Drops what is queued and not taken (the broker delivers it again), handing its permits
   * back: a Failover consumer that lost the active role must not hand out what the new active
   * consumer gets too.
   */
  dropQueued(): void {
    const dropped = this.queue.splice(0).length;
    const conn = this.readyConn();
    if (conn !== undefined && dropped > 0) this.addPermits(conn, dropped);
  }

  /**
   * Acks these messages individually and waits for the broker's ACK_RESPONSE: when it resolves
   * the subscription's cursor has them (a process killed right after loses none of them).
   */
  async ackAndWait(ids: readonly MessageId[]): Promise<void> {
    if (ids.length === 0) return;
    const conn = await this.connected();
    const requestId = conn.newRequestId();
    const body = create(CommandAckSchema, {
      consumerId: this.id,
      ackType: AckType.Individual,
      messageId: ids.map((id) => toMessageIdData({ ...id, batchIndex: -1 })),
      requestId,
    });
    const answer = (await conn.request(command(T.ACK, 'ack', body), requestId, `ack on ${this.topic}`)).ackResponse!;
    if (isFieldSet(answer, CommandAckResponseSchema.field.error))
      throw new PulsarServerError(`ack on ${this.topic}`, answer.error, answer.message);
  }

  ack(id: MessageId): void {
    if (id.batchIndex >= 0) {
      const key = `${id.ledgerId}:${id.entryId}`;
      const left = this.batches.get(key);
      left?.delete(id.batchIndex);
      if (left !== undefined && left.size > 0) return; // the entry is acked with its last message
      this.batches.delete(key);
    }
    this.sendAck(AckType.Individual, { ...id, batchIndex: -1 });
  }

  /**
   * Acks `id` as part of a transaction (register the subscription with addSubscriptions first):
   * the ack takes effect on commit and is dropped on abort. Waits for the broker's ACK_RESPONSE.
   */
  async ackInTransaction(id: MessageId, txn: TxnId): Promise<void> {
    const conn = await this.connected();
    const requestId = conn.newRequestId();
    const body = create(CommandAckSchema, {
      consumerId: this.id,
      ackType: AckType.Individual,
      messageId: [toMessageIdData({ ...id, batchIndex: -1 })],
      txnidMostBits: txn.mostBits,
      txnidLeastBits: txn.leastBits,
      requestId,
    });
    const answer = (await conn.request(command(T.ACK, 'ack', body), requestId, `ack in transaction on ${this.topic}`)).ackResponse!;
    if (isFieldSet(answer, CommandAckResponseSchema.field.error))
      throw new PulsarServerError(`ack in transaction on ${this.topic}`, answer.error, answer.message);
  }

  /** Acks every message up to and including `id` (not for Shared subscriptions). */
  ackCumulative(id: MessageId): void {
    this.sendAck(AckType.Cumulative, { ...id, batchIndex: -1 });
  }

  /**
   * Asks the broker to deliver these messages again (Shared). On Exclusive and Failover the
   * broker can only redeliver everything unacked, so the local queue is dropped too.
   */
  negativeAck(ids: readonly MessageId[]): void {
    if ((this.options.type ?? 'Exclusive') !== 'Shared') {
      this.redeliverUnacknowledged();
      return;
    }
    const conn = this.readyConn();
    const messageIds = ids.map((id) => toMessageIdData({ ...id, batchIndex: -1 }));
    conn?.send(
      command(
        T.REDELIVER_UNACKNOWLEDGED_MESSAGES,
        'redeliverUnacknowledgedMessages',
        create(CommandRedeliverUnacknowledgedMessagesSchema, { consumerId: this.id, messageIds }),
      ),
    );
  }

  /** Redelivers every unacked message; the broker drops the older deliveries by consumer epoch. */
  redeliverUnacknowledged(): void {
    const conn = this.readyConn();
    if (conn === undefined) return;
    this.epoch++;
    const dropped = this.queue.splice(0).length;
    conn.send(
      command(
        T.REDELIVER_UNACKNOWLEDGED_MESSAGES,
        'redeliverUnacknowledgedMessages',
        create(CommandRedeliverUnacknowledgedMessagesSchema, { consumerId: this.id, consumerEpoch: this.epoch }),
      ),
    );
    this.addPermits(conn, dropped);
  }

  /** Moves the subscription to a message id (the next message is the one at `target`) or a publish time (ms). */
  async seek(target: MessageId | number): Promise<void> {
    const conn = await this.connected();
    const requestId = conn.newRequestId();
    const byTime = typeof target === 'number';
    const body = create(CommandSeekSchema, {
      consumerId: this.id,
      requestId,
      ...(byTime ? { messagePublishTime: BigInt(target) } : { messageId: toMessageIdData(target) }),
    });
    const gen = this.generation;
    // If the broker closes the consumer for the seek, a reader resubscribes at the target.
    if (!byTime) this.seekStart = target;
    try {
      await conn.request(command(T.SEEK, 'seek', body), requestId, `seek of ${this.subscription} on ${this.topic}`);
    } finally {
      this.seekStart = undefined;
    }
    this.dropGeneration(gen);
    this.lastDequeued = undefined;
    this.skipUpTo = undefined;
  }

  /** The id of the last message in the topic (the readable end); EARLIEST-like (-1) when empty. */
  async getLastMessageId(): Promise<MessageId> {
    const conn = await this.connected();
    const requestId = conn.newRequestId();
    const body = create(CommandGetLastMessageIdSchema, { consumerId: this.id, requestId });
    const answer = await conn.request(
      command(T.GET_LAST_MESSAGE_ID, 'getLastMessageId', body),
      requestId,
      `last message id of ${this.topic}`,
    );
    return toMessageId(answer.getLastMessageIdResponse!.lastMessageId!);
  }

  /** Deletes the subscription (the consumer must be its only one) and closes the consumer. */
  async unsubscribe(): Promise<void> {
    const conn = await this.connected();
    const requestId = conn.newRequestId();
    const body = create(CommandUnsubscribeSchema, { consumerId: this.id, requestId });
    await conn.request(command(T.UNSUBSCRIBE, 'unsubscribe', body), requestId, `unsubscribe ${this.subscription}`);
    await this.close();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const conn = this.state === 'ready' ? this.conn : undefined;
    this.state = 'closed';
    this.stop.abort();
    const error = new ClosedError(`consumer of ${this.topic} is closed`);
    for (const w of this.waiters.splice(0)) w.reject(error);
    this.queue.length = 0;
    for (const watcher of [...this.watchers]) watcher();
    if (conn !== undefined && !conn.closed) {
      conn.unregisterConsumer(this.id);
      const requestId = conn.newRequestId();
      const body = create(CommandCloseConsumerSchema, { consumerId: this.id, requestId });
      await conn
        .request(command(T.CLOSE_CONSUMER, 'closeConsumer', body), requestId, `close consumer of ${this.topic}`)
        .catch(() => undefined);
    }
    this.onClosed();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Message> {
    while (this.state !== 'closed') yield await this.receive();
  }

  private readyConn(): Connection | undefined {
    return this.state === 'ready' && this.conn !== undefined && !this.conn.closed ? this.conn : undefined;
  }

  /** The connection once (re)subscribed; rejects when closed or failed. */
  private async connected(): Promise<Connection> {
    for (;;) {
      if (this.state === 'closed') throw new ClosedError(`consumer of ${this.topic} is closed`);
      if (this.state === 'failed') throw this.failure!;
      const conn = this.readyConn();
      if (conn !== undefined) return conn;
      // Ready on a connection that closed without telling us: subscribe again (never wait on it).
      if (this.state === 'ready' && this.conn?.closed) this.resubscribe(this.conn);
      await sleep(20, this.stop.signal);
    }
  }

  private sendAck(ackType: AckType, id: MessageId): void {
    const body = create(CommandAckSchema, { consumerId: this.id, ackType, messageId: [toMessageIdData(id)] });
    this.readyConn()?.send(command(T.ACK, 'ack', body));
  }

  private dequeued(message: Message): Message {
    this.lastDequeued = message.messageId;
    this.taken++;
    const conn = this.readyConn();
    if (conn !== undefined) this.addPermits(conn, 1);
    return message;
  }

  /** Hands permits back in chunks of half the queue, as the Go and Java clients do. */
  private addPermits(conn: Connection, n: number): void {
    this.permits += n;
    if (this.permits >= Math.max(1, Math.floor(this.queueSize / 2))) {
      // A bounded reader (maxMessages) asks for no more than its budget; the rest are not needed.
      const give = Math.min(this.permits, this.budget - this.granted);
      this.permits = 0;
      if (give <= 0) return;
      this.granted += give;
      conn.send(command(T.FLOW, 'flow', create(CommandFlowSchema, { consumerId: this.id, messagePermits: give })));
    }
  }

  private dropGeneration(gen: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.generation <= gen) this.queue.splice(i, 1);
  }

  private async subscribe(first: boolean): Promise<void> {
    // As Producer.register: the first subscription gives up after createTimeoutMs.
    const deadline = first ? Date.now() + (this.options.createTimeoutMs ?? 30_000) : Number.POSITIVE_INFINITY;
    for (;;) {
      try {
        await this.subscribeOnce();
        return;
      } catch (e) {
        if (this.state === 'closed') throw new ClosedError(`consumer of ${this.topic} is closed`);
        const busy = first && e instanceof PulsarServerError && e.serverError === ServerError.ConsumerBusy;
        if (!isRetriable(e) || busy || Date.now() >= deadline) {
          const error = e instanceof Error ? e : new PulsarClientError(String(e));
          if (!first) {
            this.state = 'failed';
            this.failure = error;
            for (const w of this.waiters.splice(0)) w.reject(error);
            for (const watcher of [...this.watchers]) watcher();
          }
          throw error;
        }
        await sleep(this.backoff.delay(), this.stop.signal);
      }
    }
  }

  private async subscribeOnce(): Promise<void> {
    const conn = await this.client.connectionFor(this.topic);
    if (this.state === 'closed') return;
    const durable = this.options.durable ?? true;
    // The broker starts a reader at its start entry, inclusive (it steps back one entry in case
    // the start is inside a batch), so the client skips what is at or before an exclusive start:
    // the given start, or after a reconnect the last message the application took. A seek's
    // target is inclusive.
    const seek = this.seekStart;
    const exclusiveStart = this.lastDequeued ?? this.options.startMessageId ?? EARLIEST;
    const start = seek ?? exclusiveStart;
    // Nothing to skip from EARLIEST, nor from LATEST (the broker sends only what comes after).
    const endless = compareMessageIds(exclusiveStart, EARLIEST) === 0 || compareMessageIds(exclusiveStart, LATEST) === 0;
    this.skipUpTo = !durable && seek === undefined && !endless ? exclusiveStart : undefined;
    const gen = ++this.generation;
    this.queue.length = 0;
    this.permits = 0;
    const requestId = conn.newRequestId();
    const body = create(CommandSubscribeSchema, {
      topic: this.topic,
      subscription: this.subscription,
      subType: SUB_TYPES[this.options.type ?? 'Exclusive'],
      consumerId: this.id,
      requestId,
      durable,
      readCompacted: this.options.readCompacted ?? false,
      initialPosition: this.options.initialPosition === 'earliest' ? InitialPosition.Earliest : InitialPosition.Latest,
      consumerEpoch: this.epoch,
      ...(this.options.name === undefined ? {} : { consumerName: this.options.name }),
      ...(durable ? {} : { startMessageId: toMessageIdData(start) }),
    });
    conn.registerConsumer(this.id, { handle: (f) => this.handle(conn, gen, f), connectionClosed: () => this.resubscribe(conn) });
    try {
      await conn.request(command(T.SUBSCRIBE, 'subscribe', body), requestId, `subscribe ${this.subscription} to ${this.topic}`);
    } catch (e) {
      conn.unregisterConsumer(this.id);
      throw e;
    }
    if (this.stop.signal.aborted) {
      // Closed while subscribing: close() had no connection to tell the broker on.
      conn.unregisterConsumer(this.id);
      const closing = conn.newRequestId();
      const close = create(CommandCloseConsumerSchema, { consumerId: this.id, requestId: closing });
      void conn
        .request(command(T.CLOSE_CONSUMER, 'closeConsumer', close), closing, `close consumer of ${this.topic}`)
        .catch(() => undefined);
      return;
    }
    if (conn.closed || !conn.hasConsumer(this.id)) {
      // The connection closed (or the broker closed us) between its answer and here: that news
      // came while we were not "ready" and was dropped, so "ready" now would wait forever.
      conn.unregisterConsumer(this.id);
      throw new ConnectionClosedError(`subscription of ${this.topic} lost its connection as it was answered`);
    }
    this.conn = conn;
    this.state = 'ready';
    this.backoff.reset();
    const max = this.options.maxMessages;
    this.budget = max === undefined ? Number.POSITIVE_INFINITY : Math.max(0, max - this.taken);
    this.granted = Math.min(this.queueSize, this.budget);
    if (this.granted > 0) {
      conn.send(command(T.FLOW, 'flow', create(CommandFlowSchema, { consumerId: this.id, messagePermits: this.granted })));
    }
  }

  private resubscribe(from: Connection): void {
    if (this.state !== 'ready' || this.conn !== from) return;
    this.state = 'connecting';
    this.conn = undefined;
    this.subscribe(false).catch(() => undefined);
  }

  private handle(conn: Connection, gen: number, frame: Frame): void {
    const cmd = frame.command;
    switch (cmd.type) {
      case T.MESSAGE:
        this.onMessage(conn, gen, frame);
        return;
      case T.CLOSE_CONSUMER:
        conn.unregisterConsumer(this.id);
        this.resubscribe(conn);
        return;
      case T.ACTIVE_CONSUMER_CHANGE:
        this.options.onActiveChange?.(cmd.activeConsumerChange!.isActive);
        return;
      case T.REACHED_END_OF_TOPIC:
        this.endOfTopic = true;
        return;
    }
  }

  private onMessage(conn: Connection, gen: number, frame: Frame): void {
    const cmd = frame.command.message!;
    const payload = frame.payload;
    if (gen !== this.generation || payload === undefined) return;
    // After a redeliver-all the broker may still push deliveries of the older epoch.
    if (cmd.consumerEpoch !== 0n && cmd.consumerEpoch < this.epoch) {
      this.addPermits(conn, Math.max(1, payload.metadata.numMessagesInBatch));
      return;
    }
    const id = toMessageId(cmd.messageId!);
    if (!payload.checksumValid) {
      // Corrupted on the way: ask for it again rather than drop it.
      this.negativeAck([id]);
      return;
    }
    let parts: EntryMessage[];
    try {
      parts = entryMessages(payload.metadata, payload.payload);
    } catch (e) {
      const error =
        e instanceof ProtocolError ? e : new ProtocolError(`undecodable message ${id.ledgerId}:${id.entryId} on ${this.topic}`, e);
      this.waiters.shift()?.reject(error);
      return;
    }
    if (this.options.counter !== undefined) this.options.counter.received += parts.length;
    const meta = payload.metadata;
    const skip = this.skipUpTo;
    if (parts.length > 1 || parts[0]?.batchIndex !== -1)
      this.batches.set(`${id.ledgerId}:${id.entryId}`, new Set(parts.map((p) => p.batchIndex)));
    for (const part of parts) {
      const messageId: MessageId = { ...id, batchIndex: part.batchIndex };
      // A reader resubscribed inside a batch gets the whole entry again: skip what it had.
      if (skip !== undefined && compareMessageIds(messageId, skip) <= 0) {
        this.budget++; // it used a permit without being delivered
        this.addPermits(conn, 1);
        continue;
      }
      const message: Message = {
        topic: this.topic,
        messageId,
        payload: part.payload,
        key: part.key,
        properties: part.properties,
        producerName: meta.producerName,
        sequenceId: part.sequenceId,
        publishTime: Number(meta.publishTime),
        eventTime: part.eventTime,
        redeliveryCount: cmd.redeliveryCount,
      };
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter.resolve(this.dequeued(message));
      else this.queue.push({ message, generation: gen });
    }
    if (this.queue.length > 0) for (const watcher of [...this.watchers]) watcher();
  }
}
