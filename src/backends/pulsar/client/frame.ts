// Pulsar's wire framing (pulsar.apache.org/docs/developing-binary-protocol):
//   simple:  [totalSize u32][commandSize u32][BaseCommand]
//   payload: [totalSize u32][commandSize u32][BaseCommand]
//            [0x0e01 u16][crc32c u32][metadataSize u32][MessageMetadata][payload]
// The checksum covers everything after it. A broker configured with broker-entry metadata puts
// [0x0e02 u16][size u32][BrokerEntryMetadata] in front of the 0x0e01 part. All big-endian.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { crc32c } from './crc32c.ts';
import { ProtocolError } from './errors.ts';
import {
  type BaseCommand,
  BaseCommandSchema,
  type BrokerEntryMetadata,
  BrokerEntryMetadataSchema,
  type MessageMetadata,
  MessageMetadataSchema,
} from './proto/PulsarApi_pb.ts';

export const MAGIC_CRC32C = 0x0e01;
export const MAGIC_BROKER_ENTRY_METADATA = 0x0e02;
/** The broker's default maxMessageSize; CONNECTED may announce another. */
export const DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024;
/** Room for the command and metadata on top of the message size in one frame. */
export const FRAME_OVERHEAD = 10 * 1024;

export function encodeCommand(command: BaseCommand): Buffer {
  const cmd = toBinary(BaseCommandSchema, command);
  const out = Buffer.allocUnsafe(8 + cmd.length);
  out.writeUInt32BE(4 + cmd.length, 0);
  out.writeUInt32BE(cmd.length, 4);
  out.set(cmd, 8);
  return out;
}

export function encodePayloadCommand(command: BaseCommand, metadata: MessageMetadata, payload: Uint8Array): Buffer {
  const cmd = toBinary(BaseCommandSchema, command);
  const meta = toBinary(MessageMetadataSchema, metadata);
  const total = 4 + cmd.length + 2 + 4 + 4 + meta.length + payload.length;
  const out = Buffer.allocUnsafe(4 + total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(cmd.length, 4);
  out.set(cmd, 8);
  const magicAt = 8 + cmd.length;
  out.writeUInt16BE(MAGIC_CRC32C, magicAt);
  const checksumAt = magicAt + 2;
  const metaAt = checksumAt + 4;
  out.writeUInt32BE(meta.length, metaAt);
  out.set(meta, metaAt + 4);
  out.set(payload, metaAt + 4 + meta.length);
  out.writeUInt32BE(crc32c(out.subarray(metaAt)), checksumAt);
  return out;
}

/** The message part of a payload frame (MESSAGE from the broker, SEND in tests). */
export interface FramePayload {
  readonly metadata: MessageMetadata;
  /** The entry's payload: one message, or a batch when metadata.numMessagesInBatch is set. */
  readonly payload: Uint8Array;
  readonly brokerEntryMetadata: BrokerEntryMetadata | undefined;
  /** False when the frame had a checksum and it did not match. */
  readonly checksumValid: boolean;
}

export interface Frame {
  readonly command: BaseCommand;
  readonly payload: FramePayload | undefined;
}

/** Parses one frame without its leading totalSize field. */
export function decodeFrame(frame: Buffer): Frame {
  if (frame.length < 4) throw new ProtocolError(`frame of ${frame.length} bytes is too short`);
  const cmdSize = frame.readUInt32BE(0);
  if (4 + cmdSize > frame.length) throw new ProtocolError(`command size ${cmdSize} exceeds the frame (${frame.length} bytes)`);
  const command = fromBinary(BaseCommandSchema, frame.subarray(4, 4 + cmdSize));
  let at = 4 + cmdSize;
  if (at === frame.length) return { command, payload: undefined };
  let brokerEntryMetadata: BrokerEntryMetadata | undefined;
  if (frame.readUInt16BE(at) === MAGIC_BROKER_ENTRY_METADATA) {
    const size = frame.readUInt32BE(at + 2);
    brokerEntryMetadata = fromBinary(BrokerEntryMetadataSchema, frame.subarray(at + 6, at + 6 + size));
    at += 6 + size;
  }
  let checksumValid = true;
  if (frame.readUInt16BE(at) === MAGIC_CRC32C) {
    const expected = frame.readUInt32BE(at + 2);
    at += 6;
    checksumValid = crc32c(frame.subarray(at)) === expected;
  }
  const metaSize = frame.readUInt32BE(at);
  if (at + 4 + metaSize > frame.length) throw new ProtocolError(`metadata size ${metaSize} exceeds the frame`);
  const metadata = fromBinary(MessageMetadataSchema, frame.subarray(at + 4, at + 4 + metaSize));
  const payload = frame.subarray(at + 4 + metaSize);
  return { command, payload: { metadata, payload, brokerEntryMetadata, checksumValid } };
}

/**
 * Cuts a TCP byte stream into frames. Keeps at most one partial frame; refuses a frame larger
 * than `maxFrameSize` (a corrupt length would otherwise make it buffer without bound).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  maxFrameSize: number;
  constructor(maxFrameSize = DEFAULT_MAX_MESSAGE_SIZE + FRAME_OVERHEAD) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Adds bytes; returns the frames now complete (each without its totalSize prefix). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      // Join chunks only once a whole frame is there: a 5 MB frame comes in ~80 TCP chunks.
      if (this.chunks[0]!.length < 4) this.concat();
      const size = this.chunks[0]!.readUInt32BE(0);
      if (size > this.maxFrameSize) throw new ProtocolError(`frame of ${size} bytes is over the limit of ${this.maxFrameSize}`);
      if (this.buffered < 4 + size) break;
      const head = this.chunks[0]!.length >= 4 + size ? this.chunks[0]! : this.concat();
      frames.push(head.subarray(4, 4 + size));
      const rest = head.subarray(4 + size);
      this.chunks.shift();
      if (rest.length > 0) this.chunks.unshift(rest);
      this.buffered -= 4 + size;
    }
    return frames;
  }

  private concat(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

/** A BaseCommand of `type` with its body set (the body field's number equals the type). */
export function command<K extends CommandBodyKey>(type: BaseCommand['type'], key: K, body: NonNullable<BaseCommand[K]>): BaseCommand {
  return create(BaseCommandSchema, { type, [key]: body } as never);
}

export type CommandBodyKey = Exclude<keyof BaseCommand, 'type' | '$typeName' | '$unknown'>;

/** The body of a command: its field has the number of its type. */
export function commandBody(cmd: BaseCommand): { requestId?: bigint } | undefined {
  const field = BaseCommandSchema.fields.find((f) => f.number === cmd.type);
  if (field === undefined) return undefined;
  return (cmd as unknown as Record<string, { requestId?: bigint } | undefined>)[field.localName];
}
