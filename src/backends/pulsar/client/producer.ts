// A producer on one topic partition: registration with an access mode and topic epoch, SEND
// with sequence ids and receipts, a bound on messages in flight, and re-registration after a
// lost connection or a broker's CLOSE_PRODUCER (in-flight frames are sent again with the same
// sequence ids, as pulsar-client-go's producer_partition.go does, so a namespace with
// deduplication stores each once). Modelled on that file, plus what its Go API leaves out:
// ExclusiveWithFencing and a typed fenced state.

import { create, isFieldSet } from '@bufbuild/protobuf';
import { Backoff, sleep } from './backoff.ts';
import type { Connection, ConnectionSource } from './connection.ts';
import {
  ClosedError,
  ConnectionClosedError,
  isRetriable,
  MessageTooLargeError,
  ProducerFencedError,
  PulsarClientError,
  PulsarServerError,
  PulsarTimeoutError,
} from './errors.ts';
import { command, encodePayloadCommand, FRAME_OVERHEAD, type Frame } from './frame.ts';
import { type MessageId, toMessageId } from './message-id.ts';
import {
  BaseCommand_Type as T,
  CommandCloseProducerSchema,
  type CommandProducerSuccess,
  CommandProducerSuccessSchema,
  CommandProducerSchema,
  CommandSendSchema,
  KeyValueSchema,
  MessageMetadataSchema,
  ProducerAccessMode as Mode,
  ServerError,
} from './proto/PulsarApi_pb.ts';
import type { TxnId } from './transactions.ts';

export type ProducerAccessMode = 'Shared' | 'Exclusive' | 'ExclusiveWithFencing' | 'WaitForExclusive';

export interface ProducerOptions {
  /** A full topic (or partition) name. */
  readonly topic: string;
  /** Fixed producer name; deduplication keeps its high-water mark per name. Default: the broker picks one. */
  readonly name?: string | undefined;
  /** Default Shared. */
  readonly accessMode?: ProducerAccessMode | undefined;
  /** Register with this topic epoch (a fenced producer's old epoch is refused). Default: the broker's. */
  readonly topicEpoch?: bigint | undefined;
  /** Fail a send that has no receipt after this long (outcome unknown). Default 30 s; 0: never. */
  readonly sendTimeoutMs?: number | undefined;
  /** send() waits while this many messages are in flight. Default 1000. */
  readonly maxPendingMessages?: number | undefined;
  readonly properties?: Readonly<Record<string, string>> | undefined;
  /** How long createProducer retries a broker that is unreachable or not ready. Default 30 s. */
  readonly createTimeoutMs?: number | undefined;
  /** Called when a WaitForExclusive producer got the topic (also after a re-registration). */
  readonly onExclusive?: ((topicEpoch: bigint | undefined) => void) | undefined;
}

export interface SendOptions {
  /** Sequence id for deduplication. Default: one more than the last one this producer used. */
  readonly sequenceId?: bigint | undefined;
  readonly key?: string | undefined;
  readonly properties?: Readonly<Record<string, string>> | undefined;
  readonly eventTime?: number | undefined;
  /** Publish time (ms) to record instead of now: seeks by time and `messageid/{time}` search it. */
  readonly publishTime?: number | undefined;
  /** Send inside this transaction (see transactions.ts). */
  readonly txn?: TxnId | undefined;
}

export interface SendReceipt {
  readonly sequenceId: bigint;
  readonly messageId: MessageId;
  /** The broker deduplicated it: a message with this sequence id was stored before. */
  readonly duplicate: boolean;
}

interface PendingSend {
  readonly sequenceId: bigint;
  readonly frame: Buffer;
  resolve(receipt: SendReceipt): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

type State = 'connecting' | 'ready' | 'closed' | 'failed';

const MODES: Record<ProducerAccessMode, Mode> = {
  Shared: Mode.Shared,
  Exclusive: Mode.Exclusive,
  ExclusiveWithFencing: Mode.ExclusiveWithFencing,
  WaitForExclusive: Mode.WaitForExclusive,
};

export class Producer {
  readonly topic: string;
  readonly id: bigint;
  /** The name the broker registered (the given one, or one it made up). */
  name: string;
  /** The topic epoch of the last registration (exclusive modes). */
  topicEpoch: bigint | undefined;
  /** The broker's last stored sequence id of this name at registration (-1: none, or no dedup). */
  lastSequenceId = -1n;
  private nextSequenceId: bigint | undefined;
  private state: State = 'connecting';
  private failure: Error | undefined;
  private conn: Connection | undefined;
  private readonly pending = new Map<bigint, PendingSend>();
  private readonly slotWaiters: (() => void)[] = [];
  private readonly options: ProducerOptions;
  private readonly client: ConnectionSource;
  private readonly backoff = new Backoff();
  private readonly stop = new AbortController();
  private readonly onClosed: () => void;
  private readonly firstReady: Promise<void>;

  constructor(client: ConnectionSource, id: bigint, options: ProducerOptions, onClosed: () => void) {
    this.client = client;
    this.id = id;
    this.options = options;
    this.topic = options.topic;
    this.name = options.name ?? '';
    this.topicEpoch = options.topicEpoch;
    this.onClosed = onClosed;
    this.firstReady = this.register(true);
  }

  ready(): Promise<void> {
    return this.firstReady;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends one message; resolves with its receipt. Rejects ProducerFencedError once fenced. */
  async send(payload: Uint8Array, options: SendOptions = {}): Promise<SendReceipt> {
    this.assertUsable();
    const max = this.options.maxPendingMessages ?? 1000;
    while (this.pending.size >= max) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
      this.assertUsable();
    }
    const sequenceId = options.sequenceId ?? this.nextSequenceId ?? 0n;
    if (this.pending.has(sequenceId)) throw new PulsarClientError(`sequence id ${sequenceId} is already in flight on ${this.topic}`);
    this.nextSequenceId = sequenceId + 1n > (this.nextSequenceId ?? 0n) ? sequenceId + 1n : this.nextSequenceId;
    const txn = options.txn === undefined ? {} : { txnidMostBits: options.txn.mostBits, txnidLeastBits: options.txn.leastBits };
    const metadata = create(MessageMetadataSchema, {
      producerName: this.name,
      sequenceId,
      publishTime: BigInt(options.publishTime ?? Date.now()),
      properties: Object.entries(options.properties ?? {}).map(([key, value]) => create(KeyValueSchema, { key, value })),
      uncompressedSize: payload.length,
      ...(options.key === undefined ? {} : { partitionKey: options.key }),
      ...(options.eventTime === undefined ? {} : { eventTime: BigInt(options.eventTime) }),
      ...txn,
    });
    const send = create(CommandSendSchema, { producerId: this.id, sequenceId, numMessages: 1, ...txn });
    const frame = encodePayloadCommand(command(T.SEND, 'send', send), metadata, payload);
    const limit = (this.conn?.maxMessageSize ?? 5 * 1024 * 1024) + FRAME_OVERHEAD;
    if (frame.length > limit) throw new MessageTooLargeError(this.topic, payload.length, limit - FRAME_OVERHEAD);
    return new Promise<SendReceipt>((resolve, reject) => {
      const entry: PendingSend = { sequenceId, frame, resolve, reject, timer: undefined };
      const timeoutMs = this.options.sendTimeoutMs ?? 30_000;
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.settle(sequenceId);
          reject(
            new PulsarTimeoutError(
              `send of sequence id ${sequenceId} to ${this.topic}: no receipt within ${timeoutMs} ms; it may or may not be stored`,
            ),
          );
        }, timeoutMs);
      }
      this.pending.set(sequenceId, entry);
      const conn = this.state === 'ready' ? this.conn : undefined;
      // A connection that closed without telling us: register again; pending frames go after it.
      if (conn?.closed) this.reconnect(conn);
      else conn?.sendFrame(frame);
    });
  }

  /**
   * Closes the producer on the broker; sends still in flight reject with ClosedError (outcome
   * unknown). An ExclusiveWithFencing producer is only dropped here, never closed with
   * CLOSE_PRODUCER: Pulsar 4.0.7 deadlocks the topic (and then the broker's IO threads) when a
   * CLOSE_PRODUCER meets another client's fencing producer on the same topic (Producer.close
   * holds the producer's monitor and wants the topic's lock; the fencing add holds the lock and
   * closes the old producer). The broker drops it when the next one fences it or when the
   * connection closes, both safe paths.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const conn = this.state === 'ready' ? this.conn : undefined;
    this.state = 'closed';
    this.stop.abort();
    this.failAll(new ClosedError(`producer on ${this.topic} was closed; messages without a receipt may or may not be stored`));
    if (conn !== undefined && this.options.accessMode === 'ExclusiveWithFencing') conn.unregisterProducer(this.id);
    else if (conn !== undefined && !conn.closed) {
      conn.unregisterProducer(this.id);
      const requestId = conn.newRequestId();
      const body = create(CommandCloseProducerSchema, { producerId: this.id, requestId });
      await conn
        .request(command(T.CLOSE_PRODUCER, 'closeProducer', body), requestId, `close producer on ${this.topic}`)
        .catch(() => undefined);
    }
    this.onClosed();
  }

  private assertUsable(): void {
    if (this.state === 'closed') throw new ClosedError(`producer on ${this.topic} is closed`);
    if (this.state === 'failed') throw this.failure!;
  }

  /** Registers on the topic's broker; the first time errors are thrown, later they fail the producer. */
  private async register(first: boolean): Promise<void> {
    // The first registration gives up after createTimeoutMs, so a missing broker fails loudly;
    // later ones keep trying while the producer is open (pending sends end by their timeouts).
    const deadline = first ? Date.now() + (this.options.createTimeoutMs ?? 30_000) : Number.POSITIVE_INFINITY;
    for (;;) {
      try {
        await this.registerOnce();
        return;
      } catch (e) {
        if (this.state === 'closed') throw new ClosedError(`producer on ${this.topic} is closed`);
        const retriable = isRetriable(e) && !(first && e instanceof PulsarServerError && e.serverError === ServerError.ProducerBusy);
        if (!retriable || Date.now() >= deadline) {
          const error = this.typed(e);
          if (!first) this.fail(error);
          throw error;
        }
        await sleep(this.backoff.delay(), this.stop.signal);
      }
    }
  }

  private async registerOnce(): Promise<void> {
    const conn = await this.client.connectionFor(this.topic);
    if (this.state === 'closed') return;
    const requestId = conn.newRequestId();
    const body = create(CommandProducerSchema, {
      topic: this.topic,
      producerId: this.id,
      requestId,
      producerAccessMode: MODES[this.options.accessMode ?? 'Shared'],
      userProvidedProducerName: this.options.name !== undefined,
      metadata: Object.entries(this.options.properties ?? {}).map(([key, value]) => create(KeyValueSchema, { key, value })),
      ...(this.name === '' ? {} : { producerName: this.name }),
      ...(this.topicEpoch === undefined ? {} : { topicEpoch: this.topicEpoch }),
    });
    conn.registerProducer(this.id, { handle: (f) => this.handle(conn, f), connectionClosed: () => this.reconnect(conn) });
    let answer: CommandProducerSuccess;
    try {
      const waitForExclusive = this.options.accessMode === 'WaitForExclusive';
      answer = (
        await conn.request(command(T.PRODUCER, 'producer', body), requestId, `producer on ${this.topic}`, {
          interim: () => undefined,
          ...(waitForExclusive ? { timeoutMs: 0 } : {}),
        })
      ).producerSuccess!;
    } catch (e) {
      conn.unregisterProducer(this.id);
      throw e;
    }
    if (conn.closed || !conn.hasProducer(this.id)) {
      // Lost between the broker's answer and here (see Consumer.subscribeOnce): register again.
      conn.unregisterProducer(this.id);
      throw new ConnectionClosedError(`producer on ${this.topic} lost its connection as it was answered`);
    }
    this.name = answer.producerName;
    if (isFieldSet(answer, CommandProducerSuccessSchema.field.topicEpoch)) this.topicEpoch = answer.topicEpoch;
    this.lastSequenceId = answer.lastSequenceId;
    this.nextSequenceId ??= answer.lastSequenceId + 1n;
    this.conn = conn;
    this.state = 'ready';
    if (this.pending.size === 0) this.backoff.reset();
    if (this.options.accessMode === 'WaitForExclusive') this.options.onExclusive?.(this.topicEpoch);
    // Frames without a receipt go again, in sequence order, with their sequence ids.
    for (const p of [...this.pending.values()].sort((a, b) => (a.sequenceId < b.sequenceId ? -1 : 1))) conn.sendFrame(p.frame);
  }

  private handle(conn: Connection, frame: Frame): void {
    const cmd = frame.command;
    if (cmd.type === T.SEND_RECEIPT) {
      const r = cmd.sendReceipt!;
      const entry = this.settle(r.sequenceId);
      if (entry === undefined) return; // timed out already, or a receipt of a resent duplicate
      this.backoff.reset();
      const messageId = toMessageId(r.messageId!);
      entry.resolve({ sequenceId: r.sequenceId, messageId, duplicate: messageId.ledgerId >= 1n << 63n });
    } else if (cmd.type === T.SEND_ERROR) {
      // Like the Go client: register again and resend everything in flight, this one included,
      // after a growing pause. With deduplication that is exactly what the broker asks for when
      // it "cannot determine whether the message is a duplicate" (sent before, not yet
      // persisted); each send's timeout bounds the retries.
      conn.unregisterProducer(this.id);
      if (this.state !== 'ready' || this.conn !== conn) return;
      this.state = 'connecting';
      this.conn = undefined;
      void sleep(this.backoff.delay(), this.stop.signal).then(() =>
        this.state === 'connecting' ? this.register(false).catch(() => undefined) : undefined,
      );
    } else if (cmd.type === T.CLOSE_PRODUCER) {
      conn.unregisterProducer(this.id);
      this.reconnect(conn);
    }
  }

  private reconnect(from: Connection): void {
    if (this.state !== 'ready' || this.conn !== from) return;
    this.state = 'connecting';
    this.conn = undefined;
    this.register(false).catch(() => undefined);
  }

  private typed(e: unknown): Error {
    if (e instanceof PulsarServerError && e.serverError === ServerError.ProducerFenced && !(e instanceof ProducerFencedError)) {
      return new ProducerFencedError(this.topic, e.brokerMessage);
    }
    return e instanceof Error ? e : new PulsarClientError(String(e));
  }

  private fail(error: Error): void {
    this.state = 'failed';
    this.failure = error;
    this.failAll(error);
  }

  private failAll(error: Error): void {
    const all = [...this.pending.keys()];
    for (const seq of all) this.settle(seq)?.reject(error);
    for (const w of this.slotWaiters.splice(0)) w();
  }

  private settle(sequenceId: bigint): PendingSend | undefined {
    const entry = this.pending.get(sequenceId);
    if (entry === undefined) return undefined;
    this.pending.delete(sequenceId);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.slotWaiters.shift()?.();
    return entry;
  }
}
