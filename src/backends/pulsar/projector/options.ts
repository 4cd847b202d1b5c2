// Public types of `pulsarProjector` and the checks of its options.
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import { assertGroupName } from '../../../core/group-name.ts';
import { positiveInt } from '../../../core/numbers.ts';
import type { RecordedEvent } from '../../../core/recorded-event.ts';

/** One message a projector handler asks to produce. Strings are written as UTF-8. */
export interface PulsarProjectorRecord {
  /**
   * A topic of the store's namespace (`totals`) or a full name
   * (`persistent://tenant/namespace/topic`, a partition as `…-partition-<n>`). Not one of the
   * store's own topics (`<prefix>-…` in its namespace). A missing topic is made (non-partitioned).
   */
  readonly topic: string;
  readonly key?: string;
  readonly value: string | Uint8Array;
  readonly properties?: Readonly<Record<string, string>>;
}

/** What a handler returns for one event: nothing, one record or several. */
export type PulsarProjectorOutput = PulsarProjectorRecord | readonly PulsarProjectorRecord[] | undefined | void;

export interface PulsarProjectorOptions<E extends Event> {
  /** Name of the projection; its subscription on each events partition is `projector=<group>`. */
  readonly group: string;
  /** Turns one event into the messages to produce. Keep it free of other side effects: a batch may be redone. */
  readonly handle: (event: RecordedEvent<E>) => PulsarProjectorOutput | Promise<PulsarProjectorOutput>;
  /** Where a new subscription starts on a partition. Default `'beginning'`. */
  readonly start?: 'beginning' | 'end';
  /** Most events per transaction (a commit's events are never split). Default 500. */
  readonly batchSize?: number;
  /** Retries of a failing handler (exponential backoff) before its event goes to the dead letters. Default 3. */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  /**
   * How long the coordinator lets a batch's transaction stay open before it aborts it (an
   * instance that died mid-batch and that no other instance fenced). A batch's sends and acks
   * must end well within it; handlers run before it starts. Default 30000 ms.
   */
  readonly transactionTimeoutMs?: number;
  /** Longest wait for new events before looking again. Default 1000 ms. */
  readonly blockMs?: number;
  readonly signal?: AbortSignal;
  /** Failures the projector recovers from by redoing the batch. Default: the store's `onBackgroundError`. */
  readonly onError?: (error: unknown) => void;
}

export interface PulsarProjector {
  readonly group: string;
  readonly subscription: string;
  readonly deadLetterTopic: string;
  /** Resolves once the consumers of every events partition are subscribed. */
  readonly started: Promise<void>;
  /** Settles when the projector stops: resolved after `stop()`, rejected with the error that stopped it. */
  readonly done: Promise<void>;
  /** Events read in committed batches by this object (dead-lettered ones included). */
  readonly processed: number;
  readonly deadLettered: number;
  /**
   * Resolves once the group's subscription has every events partition acknowledged up to where
   * it ended when this was called (by whichever instance); rejects if the projector stops first.
   */
  caughtUp(): Promise<void>;
  /** Stops after the batch in flight (committed, or aborted if it fails) and closes its client. */
  stop(): Promise<void>;
}

export interface ProjectorSettings {
  readonly batchSize: number;
  readonly transactionTimeoutMs: number;
  readonly blockMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
}

/** Checks `options`, throwing `InvalidArgumentError` on the first bad one. */
export function checkOptions<E extends Event>(options: PulsarProjectorOptions<E>): ProjectorSettings {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('pulsarProjector needs options');
  assertGroupName(options.group);
  if (typeof options.handle !== 'function') throw new InvalidArgumentError('pulsarProjector needs a `handle` function');
  const batchSize = positiveInt(options.batchSize ?? 500, 'batchSize');
  const transactionTimeoutMs = positiveInt(options.transactionTimeoutMs ?? 30_000, 'transactionTimeoutMs');
  if (transactionTimeoutMs < 1000) throw new InvalidArgumentError('transactionTimeoutMs must be at least 1000 ms');
  const blockMs = positiveInt(options.blockMs ?? 1000, 'blockMs');
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0) throw new InvalidArgumentError('retries must be an integer >= 0');
  const retryDelayMs = options.retryDelayMs ?? 50;
  if (!Number.isInteger(retryDelayMs) || retryDelayMs < 0) throw new InvalidArgumentError('retryDelayMs must be an integer >= 0');
  if (options.start !== undefined && options.start !== 'beginning' && options.start !== 'end') {
    throw new InvalidArgumentError("start must be 'beginning' or 'end'");
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new InvalidArgumentError('onError must be a function');
  return { batchSize, transactionTimeoutMs, blockMs, retries, retryDelayMs };
}
