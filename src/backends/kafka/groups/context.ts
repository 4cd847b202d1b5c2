import type { BaseOptions } from '@platformatic/kafka';
import { StoreClosedError } from '../../../core/errors.ts';
import type { TopicLayout } from '../layout.ts';
import type { KafkaNames } from '../topics.ts';

/** Membership timings of `store.consume`'s Kafka group members. */
export interface KafkaConsumerGroupOptions {
  /**
   * Session timeout of a member: a member whose process died (no heartbeats) is removed from
   * the group after this long, and its partitions go to the others. Default 10000 ms; the
   * broker's `group.min.session.timeout.ms` (6000 ms by default) is the floor.
   */
  readonly sessionTimeoutMs?: number;
  /** Heartbeat interval: also how soon live members notice a rebalance. Default 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** How long the coordinator waits for the live members to rejoin in a rebalance. Default 30000 ms. */
  readonly rebalanceTimeoutMs?: number;
}

export interface KafkaGroupContext {
  readonly names: KafkaNames;
  /** The store's events topics and how their partitions map to store partitions. */
  readonly layout: TopicLayout;
  readonly replicationFactor: number;
  /** Base options of a new client (brokers, TLS, retries…) with this role in its client id. */
  base(role: string): BaseOptions;
  readonly options?: KafkaConsumerGroupOptions | undefined;
}

/** A member's session timeout; also how long an ack or a rejoin waits for a member to be back in its group. */
export function sessionTimeoutMs(ctx: KafkaGroupContext): number {
  return ctx.options?.sessionTimeoutMs ?? 10_000;
}

/** Closed once `close()` starts: from then on no part opens a client, joins a member or begins a transaction. */
export class Lifecycle {
  closed = false;

  throwIfClosed(): void {
    if (this.closed) throw new StoreClosedError();
  }
}
