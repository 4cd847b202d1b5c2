import type { EncodedEvent, StoredEvent } from '../../core/driver.ts';
import { DriverError, InvalidArgumentError } from '../../core/errors.ts';
import { EVENT_TYPE_NAME } from '../../core/event-type.ts';
import { PULSAR as NAME } from './client/errors.ts';
import type { Message } from './client/consumer.ts';
import type { MessageId } from './client/message-id.ts';

/**
 * Offsets. The core wants one integer per event, growing within a partition and below 2^53
 * (partition-index.ts keeps offsets as doubles). A Pulsar position is (ledger, entry), and one
 * entry (one message, one commit) carries all the events of a group commit, so an event's
 * offset packs the three: ledger (24 bits) | entry (17 bits) | index in the commit (12 bits).
 * The order of offsets is the log's order. The limits are checked, never wrapped: a ledger id
 * past 2^24 (ids are cluster-wide) or an entry past 2^17 (the broker rolls a ledger over at
 * 50,000 entries by default, `managedLedgerMaxEntriesPerLedger`) fails the read or write loudly.
 */
const INDEX_BITS = 12n;
const ENTRY_BITS = 17n;
const LEDGER_BITS = 24n;
/** Offsets one entry spans: events of one commit are `entryOffset + i`. */
export const ENTRY_SPAN = 1n << INDEX_BITS;
/** Most events one commit (one message) carries. */
export const MAX_COMMIT_EVENTS = Number(ENTRY_SPAN);

/** Offset of the first event of the entry at `id` (signed ids: -1 never reaches here). */
export function entryOffset(id: MessageId): bigint {
  if (id.ledgerId >= 1n << LEDGER_BITS || id.entryId >= 1n << ENTRY_BITS || id.ledgerId < 0n || id.entryId < 0n) {
    throw new DriverError(
      NAME,
      `message id ${id.ledgerId}:${id.entryId} is past what an eventfold offset can hold (ledger < 2^24, entry < 2^17)`,
    );
  }
  return (id.ledgerId << (ENTRY_BITS + INDEX_BITS)) | (id.entryId << INDEX_BITS);
}

/** The entry an offset lies in, as a reader start that includes it (batch index -2 sorts before the entry's message). */
export function entryStart(offset: bigint): MessageId {
  return {
    ledgerId: offset >> (ENTRY_BITS + INDEX_BITS),
    entryId: (offset >> INDEX_BITS) & ((1n << ENTRY_BITS) - 1n),
    partition: -1,
    batchIndex: -2,
  };
}

/** Where each store partition and record lives: topics of `persistent://tenant/namespace/`. */
export class PulsarNames {
  readonly prefix: string;
  readonly namespace: string;
  constructor(tenant: string, namespace: string, prefix: string) {
    this.prefix = prefix;
    this.namespace = `${tenant}/${namespace}`;
  }
  /** One partitioned topic; its partition p is store partition p. */
  get events(): string {
    return `persistent://${this.namespace}/${this.prefix}-events`;
  }
  partition(p: number): string {
    return `${this.events}-partition-${p}`;
  }
  /**
   * Checkpoints of the core's index of each store partition (index-checkpoints.ts), partitioned
   * like the events: partition p holds store partition p's. The prefix is checked like every
   * name here (pulsar-driver.ts), and no other topic of the store ends in `-index`.
   */
  get index(): string {
    return `persistent://${this.namespace}/${this.prefix}-index`;
  }
  indexPartition(p: number): string {
    if (!Number.isSafeInteger(p) || p < 0) throw new InvalidArgumentError(`partition must be a non-negative integer, got ${String(p)}`);
    return `${this.index}-partition-${p}`;
  }
  /** Snapshots and subscription checkpoints, keyed (keyed.ts). */
  get state(): string {
    return `persistent://${this.namespace}/${this.prefix}-state`;
  }
  /**
   * A consumer group's subscription (on every events partition and on the group's redrive
   * topic). Group names hold no "=", so `cg=<group>` is never another group's.
   */
  subscription(group: string): string {
    return `cg=${group}`;
  }
  /** A consumer group's dead letters; the name after the last "=" is the group's alone. */
  deadLetters(group: string): string {
    return `persistent://${this.namespace}/${this.prefix}-cg=${group}-dlq`;
  }
  /**
   * A projector's Failover subscription on every events partition (projector/). Group names
   * hold no "=", so `projector=<group>` is neither a consumer group's nor another projector's.
   */
  projectorSubscription(group: string): string {
    return `projector=${group}`;
  }
  /** A projector's dead letters. */
  projectorDeadLetters(group: string): string {
    return `persistent://${this.namespace}/${this.prefix}-projector=${group}-dlq`;
  }
  /**
   * Whether `topic` (a full name) is one of the store's own: every topic of the store is
   * `<prefix>-…` in its namespace, so a projector must not write there.
   */
  owns(topic: string): boolean {
    return topic.startsWith(`persistent://${this.namespace}/${this.prefix}-`) || topic === `persistent://${this.namespace}/${this.prefix}`;
  }
  /** Where redriven dead letters go to be delivered to the group again. */
  redrive(group: string): string {
    return `persistent://${this.namespace}/${this.prefix}-cg=${group}-redrive`;
  }
  /**
   * The schema-only topic holding one event type's registry lineage for one schema version
   * (schema-registry.ts). Event type names hold no "=", so the type is what lies between the
   * two; the name is checked here again, since it becomes part of admin URLs.
   */
  schema(type: string, schemaVersion: number): string {
    if (typeof type !== 'string' || !EVENT_TYPE_NAME.test(type)) {
      throw new InvalidArgumentError(`event type name ${JSON.stringify(type)} must match ${EVENT_TYPE_NAME}`);
    }
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1) {
      throw new InvalidArgumentError(`schema version of ${type} must be a positive integer, got ${String(schemaVersion)}`);
    }
    return `persistent://${this.namespace}/${this.prefix}-schema=${type}=v${schemaVersion}`;
  }
  /**
   * Appends routed to a partition's owner (routing/writer-group.ts), partitioned like the
   * events; the "=" keeps it apart from every group's and schema's topics.
   */
  get requests(): string {
    return `persistent://${this.namespace}/${this.prefix}-writers=requests`;
  }
  /** Answers to routed appends, read by their senders. */
  get replies(): string {
    return `persistent://${this.namespace}/${this.prefix}-writers=replies`;
  }
  /** The writers' Failover subscription on the requests topic. */
  get writers(): string {
    return 'writers';
  }
  /** Producer name of a partition's writer: deduplication keeps its sequence ids across owners. */
  writer(p: number): string {
    return `${this.prefix}-writer-${p}`;
  }
}

/** Message properties of an eventfold entry on an events partition. */
export const P = {
  kind: 'ef-kind',
  lease: 'ef-lease',
  /** On a claim marker: the partition's head as of the entry at `from` (empty: none). */
  head: 'ef-head',
  /** On a claim marker: offset of the last entry when the claim looked (empty: the partition was empty). */
  from: 'ef-from',
} as const;

export type EntryKind = 'commit' | 'claim';

export function kindOf(message: Message): EntryKind | undefined {
  const kind = message.properties[P.kind];
  return kind === 'commit' || kind === 'claim' ? kind : undefined;
}

export interface CommitEvent {
  readonly streamId: string;
  readonly version: number;
  readonly event: EncodedEvent;
}

/**
 * A commit's payload: its events one after the other, each as length-prefixed fields
 * (stream id, version, id, type, schema version, codec, metadata, time, data). The data are
 * the codec's bytes untouched.
 */
export function encodeCommit(events: readonly CommitEvent[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number): void => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    parts.push(b);
  };
  const bytes = (b: Uint8Array): void => {
    u32(b.byteLength);
    parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  };
  const str = (s: string): void => bytes(Buffer.from(s, 'utf8'));
  u32(events.length);
  for (const { streamId, version, event } of events) {
    str(streamId);
    u32(version);
    str(event.id);
    str(event.type);
    u32(event.schemaVersion);
    str(event.codec);
    str(event.metadata);
    const time = Buffer.allocUnsafe(8);
    time.writeDoubleBE(event.time);
    parts.push(time);
    bytes(event.data);
  }
  return Buffer.concat(parts);
}

/** The events of a commit entry, with their offsets; [] for anything else. Only `streamId`'s when given. */
export function decodeCommit(message: Message, partition: number, streamId?: string): StoredEvent[] {
  if (kindOf(message) !== 'commit') return [];
  return decodeCommitPayload(message, partition, streamId);
}

/** The events of a payload laid out as a commit's (a commit, or a group's dead letter or redriven copy), offsets from its id. */
export function decodeCommitPayload(message: Message, partition: number, streamId?: string): StoredEvent[] {
  const base = entryOffset(message.messageId);
  const buf = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  let at = 0;
  const u32 = (): number => {
    const n = buf.readUInt32BE(at);
    at += 4;
    return n;
  };
  const bytes = (): Buffer => {
    const n = u32();
    if (at + n > buf.length) throw new DriverError(NAME, `commit ${base} on partition ${partition} is truncated`);
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  const str = (): string => bytes().toString('utf8');
  const count = u32();
  const out: StoredEvent[] = [];
  for (let i = 0; i < count; i++) {
    const stream = str();
    const version = u32();
    const id = str();
    const type = str();
    const schemaVersion = u32();
    const codec = str();
    const metadata = str();
    const time = buf.readDoubleBE(at);
    at += 8;
    const data = bytes();
    if (streamId !== undefined && stream !== streamId) continue;
    out.push({
      id,
      type,
      schemaVersion,
      codec,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      metadata,
      time,
      streamId: stream,
      version,
      position: { partition, offset: base + BigInt(i) },
    });
  }
  return out;
}

/** Offset of the last event of a commit entry (without decoding the events). */
export function lastEventOffset(message: Message): bigint {
  const count = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength).readUInt32BE(0);
  return entryOffset(message.messageId) + BigInt(count - 1);
}
