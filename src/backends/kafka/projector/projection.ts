// What one event record becomes: the handler's records, or one dead letter.
import type { MessageToProduce } from '@platformatic/kafka';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import type { RecordedEvent } from '../../../core/recorded-event.ts';
import { withRetries } from '../../../core/retry.ts';
import type { StoreContext } from '../../../core/store-context.ts';
import type { TopicLayout } from '../layout.ts';
import type { LogRecord } from '../log.ts';
import { storedEvent } from '../records.ts';
import { type DeadLetterStage, deadLetterMessage } from './dead-letters.ts';
import { STOPPED } from './failures.ts';
import type { KafkaProjectorOptions, ProjectorOutput, ProjectorRecord } from './options.ts';
import { topicPartitionOf } from './topic-partition.ts';

export interface Projected {
  readonly messages: MessageToProduce[];
  readonly deadLettered: boolean;
}

/** Runs the handler on event records: decoding, retries, and the dead letter when they fail. */
export class Projection<E extends Event> {
  readonly #store: StoreContext<E>;
  readonly #options: KafkaProjectorOptions<E>;
  readonly #layout: TopicLayout;
  readonly #deadLetterTopic: string;
  readonly #stop: AbortSignal;

  constructor(store: StoreContext<E>, options: KafkaProjectorOptions<E>, layout: TopicLayout, deadLetterTopic: string, stop: AbortSignal) {
    this.#store = store;
    this.#options = options;
    this.#layout = layout;
    this.#deadLetterTopic = deadLetterTopic;
    this.#stop = stop;
  }

  /** The records one event record of store partition `partition` becomes. Throws `STOPPED` when `stop` cut the retries short. */
  async project(record: LogRecord, partition: number): Promise<Projected> {
    const stored = storedEvent(record, partition);
    // Not an event eventfold wrote (no envelope): nothing to project.
    if (!stored) return { messages: [], deadLettered: false };
    let event: RecordedEvent<E>;
    try {
      event = this.#store.codec.decode(stored);
    } catch (error) {
      return { messages: [this.#deadLetter(record, partition, 'decode', error, 1)], deadLettered: true };
    }
    const stop = this.#stop;
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

  #deadLetter(record: LogRecord, partition: number, stage: DeadLetterStage, error: unknown, attempts: number): MessageToProduce {
    const source = topicPartitionOf(this.#layout, partition);
    return deadLetterMessage(record, { topic: this.#deadLetterTopic, partition, source, stage, error, attempts });
  }
}

/** A handler's output as messages to produce; `InvalidArgumentError` names the first bad record. */
export function toMessages(output: ProjectorOutput): MessageToProduce[] {
  if (output === undefined || output === null) return [];
  const list: readonly unknown[] = Array.isArray(output) ? output : [output];
  return list.map((item, index) => {
    const invalid = (why: string): never => {
      throw new InvalidArgumentError(`handler output ${index}: ${why} (expected { topic, value, key?, headers?, partition? })`);
    };
    if (typeof item !== 'object' || item === null) return invalid('not an object');
    const record = item as Partial<Record<keyof ProjectorRecord, unknown>>;
    if (typeof record.topic !== 'string' || record.topic === '') return invalid('topic must be a non-empty string');
    const message: MessageToProduce = { topic: record.topic };
    if (record.key !== undefined && record.key !== null) message.key = bytes(record.key) ?? invalid('key must be a string or bytes');
    if (record.value !== null) message.value = bytes(record.value) ?? invalid('value must be a string, bytes or null');
    if (record.partition !== undefined) {
      if (!Number.isInteger(record.partition) || (record.partition as number) < 0) invalid('partition must be an integer >= 0');
      message.partition = record.partition as number;
    }
    if (record.headers !== undefined) {
      if (typeof record.headers !== 'object' || record.headers === null) return invalid('headers must be an object');
      const headers = new Map<Buffer, Buffer>();
      for (const [name, value] of Object.entries(record.headers)) {
        headers.set(Buffer.from(name, 'utf8'), bytes(value) ?? invalid(`header ${name} must be a string or bytes`));
      }
      message.headers = headers;
    }
    return message;
  });
}

/** Strings as UTF-8, byte arrays without a copy; anything else `undefined`. */
function bytes(value: unknown): Buffer | undefined {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}
