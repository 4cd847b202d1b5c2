// The options of a consumer and the messages it delivers (consumer.ts).

import type { MessageId } from './message-id.ts';

export type SubscriptionType = 'Exclusive' | 'Shared' | 'Failover';

export interface ConsumerOptions {
  readonly topic: string;
  readonly subscription: string;
  /** Default Exclusive. */
  readonly type?: SubscriptionType | undefined;
  /** False: a reader, whose cursor lives only while it is connected. Default true. */
  readonly durable?: boolean | undefined;
  /** Where a new durable subscription starts. Default 'latest'. */
  readonly initialPosition?: 'earliest' | 'latest' | undefined;
  /** A reader's start: it gets the messages after this id. Default EARLIEST (all). */
  readonly startMessageId?: MessageId | undefined;
  /** Messages the broker may push ahead of receive(). Default 1000. */
  readonly receiverQueueSize?: number | undefined;
  /**
   * A bounded read: the broker gets permits for at most this many messages per subscription
   * (after a resubscription, this many less those already taken), so it pushes no more than the
   * reader wants. Default: unbounded.
   */
  readonly maxMessages?: number | undefined;
  /** Counts the messages the broker delivers to this consumer (shared by several consumers to total their reads). */
  readonly counter?: { received: number } | undefined;
  readonly readCompacted?: boolean | undefined;
  readonly name?: string | undefined;
  /** How long subscribe() retries a broker that is unreachable or not ready. Default 30 s. */
  readonly createTimeoutMs?: number | undefined;
  /** Failover: told when this consumer becomes (or stops being) the active one. */
  readonly onActiveChange?: ((active: boolean) => void) | undefined;
}

export interface Message {
  readonly topic: string;
  readonly messageId: MessageId;
  readonly payload: Uint8Array;
  readonly key: string | undefined;
  readonly properties: Readonly<Record<string, string>>;
  readonly producerName: string;
  readonly sequenceId: bigint;
  readonly publishTime: number;
  readonly eventTime: number | undefined;
  /** How often the broker delivered it before (Shared; Failover and Exclusive keep 0). */
  readonly redeliveryCount: number;
}
