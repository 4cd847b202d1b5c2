// Index checkpoints on Pulsar: the core's index of a store partition (core/log/partition-index.ts)
// as a few messages of partition p of `<prefix>-index`, partitioned like the events topic. A
// checkpoint is written by the partition's owner (lease.ts) in chunks of at most CHUNK_BYTES,
// one message each, consecutive on the partition (one exclusive producer). Nothing is compacted
// or replaced: the reader (index-reader.ts) takes the last complete checkpoint of each kind,
// reading back from the end, and skips a torn one (a writer that died between its chunks).
import { randomUUID } from 'node:crypto';
import type { IndexCheckpointKind, IndexCheckpoints } from '../../core/driver.ts';
import type { Message } from './client/consumer.ts';
import type { MessageId } from './client/message-id.ts';

/** Under 1 MiB (the broker's limit is 5 MiB by default), with room for the message's metadata. */
export const CHUNK_BYTES = 1024 * 1024 - 16 * 1024;

/** Message properties of a chunk. */
export const IP = {
  generation: 'ef-index-gen',
  part: 'ef-index-part',
  parts: 'ef-index-parts',
  kind: 'ef-index-kind',
  /** On a delta's chunks: `<ledger>:<entry>:<generation>:<parts>` of the full checkpoint the writer knew last (`FullRef`). */
  full: 'ef-index-full',
} as const;

/** Where a full checkpoint starts: its chunk 0, what it is, and how many chunks follow. */
export interface FullRef {
  readonly at: MessageId;
  readonly generation: string;
  readonly parts: number;
}

export interface CheckpointChunk {
  readonly payload: Uint8Array;
  readonly properties: Record<string, string>;
}

/** The messages of one checkpoint, to send in order; a delta names the full checkpoint it was taken after, when known. */
export function checkpointChunks(bytes: Uint8Array, kind: IndexCheckpointKind, full?: FullRef): CheckpointChunk[] {
  const generation = randomUUID();
  const parts = Math.max(1, Math.ceil(bytes.byteLength / CHUNK_BYTES));
  return Array.from({ length: parts }, (_, part) => ({
    payload: bytes.subarray(part * CHUNK_BYTES, Math.min(bytes.byteLength, (part + 1) * CHUNK_BYTES)),
    properties: {
      [IP.generation]: generation,
      [IP.part]: String(part),
      [IP.parts]: String(parts),
      [IP.kind]: kind,
      ...(kind === 'delta' && full ? { [IP.full]: formatFullRef(full) } : {}),
    },
  }));
}

export function formatFullRef(ref: FullRef): string {
  return `${ref.at.ledgerId}:${ref.at.entryId}:${ref.generation}:${ref.parts}`;
}

/** The reference a delta's chunk carries; undefined when absent or malformed (the reader then walks back instead). */
export function parseFullRef(value: string | undefined): FullRef | undefined {
  const m = value === undefined ? null : /^(\d{1,19}):(\d{1,19}):([0-9a-f-]{36}):([1-9]\d{0,8})$/.exec(value);
  if (!m) return undefined;
  return { at: { ledgerId: BigInt(m[1]!), entryId: BigInt(m[2]!), partition: -1, batchIndex: -1 }, generation: m[3]!, parts: Number(m[4]) };
}

interface Chunk {
  readonly generation: string;
  readonly part: number;
  readonly parts: number;
  readonly kind: IndexCheckpointKind;
}

/** A message's chunk header, or undefined for anything that is not a well-formed chunk (skipped). */
function chunkOf(message: Message): Chunk | undefined {
  const p = message.properties;
  const generation = p[IP.generation];
  const part = Number(p[IP.part]);
  const parts = Number(p[IP.parts]);
  const kind = p[IP.kind];
  if (generation === undefined || (kind !== 'full' && kind !== 'delta')) return undefined;
  if (!Number.isInteger(part) || !Number.isInteger(parts) || part < 0 || parts < 1 || part >= parts) return undefined;
  return { generation, part, parts, kind };
}

/** A checkpoint found complete, in the order of the log. */
export interface Assembled {
  readonly kind: IndexCheckpointKind;
  readonly first: Message;
  readonly chunks: readonly Message[];
}

/**
 * The complete checkpoints among messages of an index partition given in log order: a
 * checkpoint is its chunks 0…parts-1 one after the other, of one generation; anything else
 * (a torn checkpoint, a stray chunk, a foreign message) is skipped.
 */
export function assemble(messages: readonly Message[]): Assembled[] {
  const out: Assembled[] = [];
  let open: { chunk: Chunk; messages: Message[] } | undefined;
  for (const message of messages) {
    const chunk = chunkOf(message);
    if (!chunk) {
      open = undefined;
      continue;
    }
    if (chunk.part === 0) open = { chunk, messages: [] };
    else if (
      !open ||
      chunk.generation !== open.chunk.generation ||
      chunk.part !== open.messages.length ||
      chunk.parts !== open.chunk.parts
    ) {
      open = undefined;
      continue;
    }
    open.messages.push(message);
    if (open.messages.length === open.chunk.parts) {
      out.push({ kind: open.chunk.kind, first: open.messages[0]!, chunks: open.messages });
      open = undefined;
    }
  }
  return out;
}

/** The bytes of an assembled checkpoint. */
export function bytesOf(checkpoint: Assembled): Uint8Array {
  return Buffer.concat(checkpoint.chunks.map((m) => m.payload));
}

/** Whether `checkpoint` is the full checkpoint `ref` names. */
export function isRef(checkpoint: Assembled, ref: FullRef): boolean {
  const id = checkpoint.first.messageId;
  return (
    checkpoint.kind === 'full' &&
    id.ledgerId === ref.at.ledgerId &&
    id.entryId === ref.at.entryId &&
    checkpoint.first.properties[IP.generation] === ref.generation &&
    checkpoint.chunks.length === ref.parts
  );
}

/** The reference to an assembled full checkpoint (for the deltas written after it). */
export function refOf(checkpoint: Assembled): FullRef {
  return {
    at: { ...checkpoint.first.messageId, batchIndex: -1 },
    generation: checkpoint.first.properties[IP.generation]!,
    parts: checkpoint.chunks.length,
  };
}

/** The last full checkpoint of `found` and the last delta after it (a delta before it is older than it). */
export function latest(found: readonly Assembled[]): { full: Assembled | undefined; delta: Assembled | undefined } {
  let full: Assembled | undefined;
  let delta: Assembled | undefined;
  for (const c of found) {
    if (c.kind === 'full') {
      full = c;
      delta = undefined;
    } else {
      delta = c;
    }
  }
  return { full, delta };
}

export function toCheckpoints(full: Assembled | undefined, delta: Assembled | undefined): IndexCheckpoints {
  return { full: full && bytesOf(full), delta: delta && bytesOf(delta) };
}
