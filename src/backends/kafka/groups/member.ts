import type { Admin, Consumer } from '@platformatic/kafka';
import { PartitionLog } from '../log.ts';

/** Where a partition's records come from: the store's log, or the group's redriven dead letters. */
export type Kind = 'e' | 'r';

/** What a member knows of one partition it owns. */
export interface PartitionState {
  readonly kind: Kind;
  readonly topic: string;
  readonly partition: number;
  /** Store partition (events topics: see layout.ts); the Kafka partition for the redrive topic. */
  readonly store: number;
  /** Identity of this ownership: receipts of an earlier one (before a rebalance) no longer ack. */
  readonly serial: number;
  /** Next offset to fetch. */
  next: bigint;
  /** Offset last committed to the group (the first one not processed). */
  committed: bigint;
  /** Delivered and not yet acknowledged, ascending. */
  readonly inFlight: bigint[];
  /** Deliveries of the record at `committed` recorded in the committed offset's metadata. */
  head: { offset: bigint; deliveries: number } | undefined;
  /** What the last commit recorded for the head, to skip repeating it. */
  recorded: string | null;
}

/** The coordinator's answer to the member's latest (re)join: not applied until the member syncs. */
export interface JoinInfo {
  readonly memberId: string;
  readonly generationId: number;
  readonly assignments: readonly { topic: string; partitions: number[] }[];
}

/** Broker answers to a member whose generation is no longer the group's (a rebalance took its partitions, or is under way). */
export const STALE_GENERATION = [
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'REBALANCE_IN_PROGRESS',
  'FENCED_INSTANCE_ID',
  'STALE_MEMBER_EPOCH',
];

/** One consumer name of a group: a member of the Kafka consumer group, with clients of its own and the partitions it owns. */
export class Member {
  readonly group: string;
  readonly name: string;
  readonly consumer: Consumer;
  readonly admin: Admin;
  readonly log: PartitionLog;
  latest: JoinInfo | undefined;
  generation = -1;
  memberId = '';
  parts = new Map<string, PartitionState>();
  lastActive = Date.now();
  idleLimitMs = 30_000;
  rotate = 0;
  closed = false;
  error: unknown;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(group: string, name: string, consumer: Consumer, admin: Admin) {
    this.group = group;
    this.name = name;
    this.consumer = consumer;
    this.admin = admin;
    this.log = new PartitionLog(admin);
  }

  /** One operation at a time per member: reads, acks, dead letters and closing touch the same state. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Whether the latest join is the generation the member's partition states belong to. */
  isSynced(): boolean {
    return this.latest?.generationId === this.generation && this.latest.memberId === this.memberId;
  }

  /** The partition owned under this ownership serial (a receipt's), if the member still owns it. */
  partitionBySerial(serial: number): PartitionState | undefined {
    for (const state of this.parts.values()) if (state.serial === serial) return state;
    return undefined;
  }

  /** Whether `state` is still the member's ownership of its partition (no rebalance replaced it). */
  owns(state: PartitionState): boolean {
    return this.parts.get(`${state.topic}/${state.partition}`) === state;
  }
}

/** Leaves the group and closes the client; never throws (closing is best effort). */
export function closeConsumer(consumer: Consumer): Promise<void> {
  // force: a member has no streams, but a stuck one must not keep the process alive.
  return new Promise((resolve) => consumer.close(true, () => resolve()));
}
