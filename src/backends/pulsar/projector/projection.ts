// What one entry of an events partition becomes: the handler's messages for each of its events, or dead letters.
import { EventfoldError, errorMessage, InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import type { RecordedEvent } from '../../../core/recorded-event.ts';
import { withRetries } from '../../../core/retry.ts';
import type { StoreContext } from '../../../core/store-context.ts';
import type { Message } from '../client/consumer.ts';
import { letterMessage } from '../groups/letters.ts';
import { decodeCommit, entryOffset, P, type PulsarNames } from '../records.ts';
import type { PulsarProjectorOptions, PulsarProjectorOutput, ProjectorSettings } from './options.ts';
import { outputTopic } from './outputs.ts';

/** Thrown inside a batch when `stop()` cut a handler's retries short: abort, do not dead-letter. */
export const STOPPED: unique symbol = Symbol('stopped');

/** One message to send in the batch's transaction. */
export interface Outgoing {
  /** Full topic name. */
  readonly topic: string;
  readonly payload: Buffer;
  readonly key?: string | undefined;
  readonly properties: Record<string, string>;
}

export interface Projected {
  readonly messages: Outgoing[];
  /** Events of the entry (0 for claim markers and messages eventfold did not write). */
  readonly events: number;
  readonly deadLettered: number;
}

/** Where it failed: decoding the event, or its handler (after the retries). */
type Stage = 'decode' | 'handle';

/** Runs the handler on each event of an entry: decoding, retries, and a dead letter for each that fails. */
export class Projection<E extends Event> {
  readonly #store: StoreContext<E>;
  readonly #options: PulsarProjectorOptions<E>;
  readonly #settings: ProjectorSettings;
  readonly #names: PulsarNames;
  readonly #deadLetterTopic: string;
  readonly #stop: AbortSignal;

  constructor(
    store: StoreContext<E>,
    options: PulsarProjectorOptions<E>,
    settings: ProjectorSettings,
    names: PulsarNames,
    deadLetterTopic: string,
    stop: AbortSignal,
  ) {
    this.#store = store;
    this.#options = options;
    this.#settings = settings;
    this.#names = names;
    this.#deadLetterTopic = deadLetterTopic;
    this.#stop = stop;
  }

  /** The messages one entry of store partition `partition` becomes. Throws `STOPPED` when `stop` cut the retries short. */
  async project(message: Message, partition: number): Promise<Projected> {
    let stored: ReturnType<typeof decodeCommit>;
    try {
      stored = decodeCommit(message, partition);
    } catch (error) {
      // A commit whose payload cannot be laid out: the whole entry is one dead letter, bytes as they were.
      return { messages: [this.#rawLetter(message, partition, error)], events: 1, deadLettered: 1 };
    }
    const messages: Outgoing[] = [];
    let deadLettered = 0;
    for (const event of stored) {
      let decoded: RecordedEvent<E>;
      try {
        decoded = this.#store.codec.decode(event);
      } catch (error) {
        messages.push(this.#letter(event, 'decode', error, 1));
        deadLettered++;
        continue;
      }
      const outcome = await withRetries(async () => this.#toMessages(await this.#options.handle(decoded)), {
        retries: this.#settings.retries,
        delayMs: this.#settings.retryDelayMs,
        signal: this.#stop,
      });
      if (outcome.ok) {
        messages.push(...outcome.value);
        continue;
      }
      // Retries cut short by stop: the batch is abandoned (aborted), not dead-lettered.
      if (this.#stop.aborted) throw STOPPED;
      messages.push(this.#letter(event, 'handle', outcome.error, outcome.attempts));
      deadLettered++;
    }
    return { messages, events: stored.length, deadLettered };
  }

  /** The event as the consumer groups' dead letters lay it out (groups/letters.ts), plus the stage and error code. */
  #letter(event: Parameters<typeof letterMessage>[0], stage: Stage, error: unknown, attempts: number): Outgoing {
    const letter = letterMessage(event, errorMessage(error).slice(0, 16_384), attempts);
    return {
      topic: this.#deadLetterTopic,
      payload: letter.payload,
      key: event.streamId,
      properties: { ...letter.properties, ...why(stage, error) },
    };
  }

  #rawLetter(message: Message, partition: number, error: unknown): Outgoing {
    return {
      topic: this.#deadLetterTopic,
      payload: Buffer.from(message.payload),
      properties: {
        ...message.properties,
        [P.kind]: 'letter',
        'ef-partition': String(partition),
        'ef-offset': String(entryOffset(message.messageId)),
        'ef-reason': errorMessage(error).slice(0, 16_384),
        ...why('decode', error),
      },
    };
  }

  /** A handler's output as messages; `InvalidArgumentError` names the first bad record. */
  #toMessages(output: PulsarProjectorOutput): Outgoing[] {
    if (output === undefined || output === null) return [];
    const list: readonly unknown[] = Array.isArray(output) ? output : [output];
    return list.map((item, index) => {
      const invalid = (what: string): never => {
        throw new InvalidArgumentError(`handler output ${index}: ${what} (expected { topic, value, key?, properties? })`);
      };
      if (typeof item !== 'object' || item === null) return invalid('not an object');
      const record = item as Record<string, unknown>;
      const topic = outputTopic(record.topic, this.#names, this.#options.group);
      const payload =
        typeof record.value === 'string'
          ? Buffer.from(record.value, 'utf8')
          : record.value instanceof Uint8Array
            ? Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength)
            : invalid('value must be a string or bytes');
      if (record.key !== undefined && typeof record.key !== 'string') invalid('key must be a string');
      const properties: Record<string, string> = {};
      if (record.properties !== undefined) {
        if (typeof record.properties !== 'object' || record.properties === null) invalid('properties must be an object');
        for (const [name, value] of Object.entries(record.properties as object)) {
          if (typeof value !== 'string') invalid(`property ${name} must be a string`);
          properties[name] = value as string;
        }
      }
      return { topic, payload, key: record.key as string | undefined, properties };
    });
  }
}

function why(stage: Stage, error: unknown): Record<string, string> {
  const code = error instanceof EventfoldError ? error.code : error instanceof Error ? error.name : typeof error;
  return { 'ef-dlq-stage': stage, 'ef-dlq-code': code };
}
