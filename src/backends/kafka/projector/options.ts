// Public types of `kafkaProjector` and the checks of its options.
import { hostname } from 'node:os';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import { assertGroupName } from '../../../core/group-name.ts';
import { positiveInt } from '../../../core/numbers.ts';
import type { RecordedEvent } from '../../../core/recorded-event.ts';

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
   * host name. See docs/architecture/kafka.md#projector (Fencing) for why.
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

/** The options that need a value of their own once checked (the others are read where used, with their defaults). */
export interface ProjectorSettings {
  readonly instance: string;
  readonly batchSize: number;
  readonly transactionTimeoutMs: number;
}

/** Checks `options` (throwing `InvalidArgumentError` on the first bad one) and resolves the instance name and sizes. */
export function checkOptions<E extends Event>(options: KafkaProjectorOptions<E>): ProjectorSettings {
  assertGroupName(options.group);
  if (typeof options.handle !== 'function') throw new InvalidArgumentError('kafkaProjector needs a `handle` function');
  const instance = options.instance ?? defaultInstance();
  if (typeof instance !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(instance)) {
    throw new InvalidArgumentError(`projector instance ${JSON.stringify(instance)} must be 1-100 ASCII letters, digits, "_" or "-"`);
  }
  const batchSize = positiveInt(options.batchSize ?? 500, 'batchSize');
  const transactionTimeoutMs = positiveInt(options.transactionTimeoutMs ?? 30_000, 'transactionTimeoutMs');
  positiveInt(options.sessionTimeoutMs ?? 10_000, 'sessionTimeoutMs');
  positiveInt(options.blockMs ?? 1000, 'blockMs');
  if ((options.retries ?? 3) < 0 || !Number.isInteger(options.retries ?? 3))
    throw new InvalidArgumentError('retries must be an integer >= 0');
  if (options.start !== undefined && options.start !== 'beginning' && options.start !== 'end') {
    throw new InvalidArgumentError("start must be 'beginning' or 'end'");
  }
  if (options.createOutputs) positiveInt(options.createOutputs.partitions, 'createOutputs.partitions');
  return { instance, batchSize, transactionTimeoutMs };
}

/** The host name, made a valid instance name. */
function defaultInstance(): string {
  const name = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 100);
  return name === '' ? 'default' : name;
}
