// The messages of one entry: a single message, or a batch of them
// ([singleMetadataSize u32][SingleMessageMetadata][payload] per message), after decompression.

import { constants, inflateSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { fromBinary, isFieldSet } from '@bufbuild/protobuf';
import { ProtocolError } from './errors.ts';
import {
  CompressionType,
  type KeyValue,
  type MessageMetadata,
  MessageMetadataSchema,
  type SingleMessageMetadata,
  SingleMessageMetadataSchema,
} from './proto/PulsarApi_pb.ts';

export interface EntryMessage {
  readonly batchIndex: number;
  readonly payload: Uint8Array;
  readonly key: string | undefined;
  readonly properties: Readonly<Record<string, string>>;
  readonly eventTime: number | undefined;
  readonly sequenceId: bigint;
  readonly nullValue: boolean;
}

function props(kv: readonly KeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of kv) out[key] = value;
  return out;
}

type ZstdZlib = { zstdDecompressSync?: (b: Uint8Array) => Buffer };

function decompress(meta: MessageMetadata, payload: Uint8Array): Uint8Array {
  switch (meta.compression) {
    case CompressionType.NONE:
      return payload;
    case CompressionType.ZLIB:
      return inflateSync(payload, { finishFlush: constants.Z_SYNC_FLUSH });
    case CompressionType.ZSTD: {
      const zstd = (zlib as ZstdZlib).zstdDecompressSync;
      if (zstd !== undefined) return zstd(payload);
      break;
    }
  }
  throw new ProtocolError(`compression ${meta.compression} (LZ4=1, ZSTD=3, SNAPPY=4) is not supported by this client`);
}

/** Splits an entry into its messages; `skipBefore` drops batch indexes below it (a reader's start). */
export function entryMessages(meta: MessageMetadata, raw: Uint8Array): EntryMessage[] {
  const payload = decompress(meta, raw);
  if (!isFieldSet(meta, MessageMetadataSchema.field.numMessagesInBatch)) {
    return [
      {
        batchIndex: -1,
        payload,
        key: isFieldSet(meta, MessageMetadataSchema.field.partitionKey) ? meta.partitionKey : undefined,
        properties: props(meta.properties),
        eventTime: meta.eventTime === 0n ? undefined : Number(meta.eventTime),
        sequenceId: meta.sequenceId,
        nullValue: meta.nullValue,
      },
    ];
  }
  const out: EntryMessage[] = [];
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 0;
  for (let i = 0; i < meta.numMessagesInBatch; i++) {
    if (at + 4 > view.length) throw new ProtocolError(`batch of ${meta.numMessagesInBatch} messages ends after ${i}`);
    const size = view.readUInt32BE(at);
    const single: SingleMessageMetadata = fromBinary(SingleMessageMetadataSchema, view.subarray(at + 4, at + 4 + size));
    at += 4 + size;
    const body = view.subarray(at, at + single.payloadSize);
    at += single.payloadSize;
    if (single.compactedOut) continue;
    out.push({
      batchIndex: i,
      payload: body,
      key: isFieldSet(single, SingleMessageMetadataSchema.field.partitionKey) ? single.partitionKey : undefined,
      properties: props(single.properties),
      eventTime: single.eventTime === 0n ? undefined : Number(single.eventTime),
      sequenceId: isFieldSet(single, SingleMessageMetadataSchema.field.sequenceId) ? single.sequenceId : meta.sequenceId + BigInt(i),
      nullValue: single.nullValue,
    });
  }
  return out;
}
