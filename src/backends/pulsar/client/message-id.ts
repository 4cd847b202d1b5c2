// Message ids: (ledger, entry) of the entry in the topic's managed ledger, the partition, and
// the index inside a batch entry (-1 for an unbatched message). Ordered like the log.

import { create } from '@bufbuild/protobuf';
import { type MessageIdData, MessageIdDataSchema } from './proto/PulsarApi_pb.ts';

export interface MessageId {
  readonly ledgerId: bigint;
  readonly entryId: bigint;
  /** -1 for a non-partitioned topic. */
  readonly partition: number;
  /** -1 for a message that is not part of a batch. */
  readonly batchIndex: number;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

/** Before the first message (Java's MessageId.earliest: -1:-1, sent as uint64). */
export const EARLIEST: MessageId = Object.freeze({ ledgerId: U64_MAX, entryId: U64_MAX, partition: -1, batchIndex: -1 });
/** After the last message (Java's MessageId.latest: Long.MAX_VALUE twice). */
export const LATEST: MessageId = Object.freeze({ ledgerId: I64_MAX, entryId: I64_MAX, partition: -1, batchIndex: -1 });

/** A ledger or entry id of -1 (uint64 max) sorts before 0, as in Java where they are signed. */
function signed(v: bigint): bigint {
  return v > I64_MAX ? v - (1n << 64n) : v;
}

export function compareMessageIds(a: MessageId, b: MessageId): number {
  const la = signed(a.ledgerId);
  const lb = signed(b.ledgerId);
  if (la !== lb) return la < lb ? -1 : 1;
  const ea = signed(a.entryId);
  const eb = signed(b.entryId);
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.batchIndex === b.batchIndex ? 0 : a.batchIndex < b.batchIndex ? -1 : 1;
}

export function toMessageId(data: MessageIdData): MessageId {
  return { ledgerId: data.ledgerId, entryId: data.entryId, partition: data.partition, batchIndex: data.batchIndex };
}

export function toMessageIdData(id: MessageId): MessageIdData {
  return create(MessageIdDataSchema, {
    ledgerId: id.ledgerId,
    entryId: id.entryId,
    partition: id.partition,
    batchIndex: id.batchIndex,
  });
}

export function formatMessageId(id: MessageId): string {
  return `${signed(id.ledgerId)}:${signed(id.entryId)}:${id.partition}:${id.batchIndex}`;
}
