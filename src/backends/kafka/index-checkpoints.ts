// Index checkpoints on Kafka: the core's index of a store partition (core/log/partition-index.ts)
// as a few records of `<prefix>.index` (`<prefix>.index-<category>` for a category's topic),
// a compacted topic partitioned like its events topic. A checkpoint is written by the
// partition's owner in one transaction (so a reader sees all of its chunks or none), in chunks
// of at most CHUNK_BYTES, keyed `chunk-<i>` (a full checkpoint) or `delta-<i>` (a delta):
// compaction keeps the latest checkpoint's chunks of each kind.
import { randomUUID } from 'node:crypto';
import type { IndexCheckpointKind, IndexCheckpoints } from '../../core/driver.ts';
import type { LogRecord } from './log.ts';
import type { OutgoingRecord } from './records.ts';
import type { TopicPartition } from './layout.ts';

/** Below Kafka's default message.max.bytes (1 MiB), with room for the record's headers. */
const CHUNK_BYTES = 512 * 1024;
const GENERATION = 'ef-index-gen';
const PART = 'ef-index-part';
const PARTS = 'ef-index-parts';
/** `delta` on a delta's chunks; absent on a full checkpoint's (as written before deltas). */
const KIND = 'ef-index-kind';

/** Topic configuration of an index topic: compacted, and compacted soon, so a cold read sees few old checkpoints. */
export const INDEX_TOPIC_CONFIG: Readonly<Record<string, string>> = {
  'cleanup.policy': 'compact',
  'segment.ms': '600000',
  'min.cleanable.dirty.ratio': '0.1',
};

/** The records of one checkpoint, to send one by one (each is its own batch, under the broker's limit). */
export function checkpointRecords(target: TopicPartition, bytes: Uint8Array, kind: IndexCheckpointKind = 'full'): OutgoingRecord[] {
  const generation = randomUUID();
  const parts = Math.max(1, Math.ceil(bytes.byteLength / CHUNK_BYTES));
  return Array.from({ length: parts }, (_, part) => ({
    topic: target.topic,
    partition: target.partition,
    key: Buffer.from(`${kind === 'delta' ? 'delta' : 'chunk'}-${part}`),
    value: Buffer.from(bytes.buffer, bytes.byteOffset + part * CHUNK_BYTES, Math.min(CHUNK_BYTES, bytes.byteLength - part * CHUNK_BYTES)),
    headers: new Map([
      [Buffer.from(GENERATION), Buffer.from(generation)],
      [Buffer.from(PART), Buffer.from(String(part))],
      [Buffer.from(PARTS), Buffer.from(String(parts))],
      ...(kind === 'delta' ? [[Buffer.from(KIND), Buffer.from('delta')] as [Buffer, Buffer]] : []),
    ]),
    timestamp: BigInt(Date.now()),
  }));
}

/**
 * Reassembles the last complete checkpoint of each kind from an index partition's records, read
 * in order: a checkpoint's chunks are consecutive (one transaction); strays of older ones that
 * compaction left are skipped.
 */
export class CheckpointAssembler {
  readonly #full = new ChunkAssembler();
  readonly #delta = new ChunkAssembler();

  add(record: LogRecord): void {
    let generation: string | undefined;
    let part = -1;
    let parts = 0;
    let delta = false;
    for (const [key, value] of record.headers) {
      const name = key?.toString('latin1');
      if (name === GENERATION) generation = value?.toString('latin1');
      else if (name === PART) part = Number(value?.toString('latin1'));
      else if (name === PARTS) parts = Number(value?.toString('latin1'));
      else if (name === KIND) delta = value?.toString('latin1') === 'delta';
    }
    if (generation === undefined || !record.value || !Number.isInteger(part) || !Number.isInteger(parts) || parts < 1) return;
    (delta ? this.#delta : this.#full).add(generation, part, parts, record.value);
  }

  /** The last complete checkpoint of each kind seen. */
  get latest(): IndexCheckpoints {
    return { full: this.#full.latest, delta: this.#delta.latest };
  }
}

/** The chunks of one kind's checkpoints, in order. */
class ChunkAssembler {
  #generation: string | undefined;
  #parts: Buffer[] = [];
  #expected = 0;
  /** The chunks of the last complete checkpoint: slices of the fetched records, joined only once asked for. */
  #complete: Buffer[] | undefined;

  add(generation: string, part: number, parts: number, value: Buffer): void {
    if (part === 0) {
      this.#generation = generation;
      this.#parts = [];
      this.#expected = parts;
    }
    if (generation !== this.#generation || part !== this.#parts.length || parts !== this.#expected) {
      this.#generation = undefined;
      this.#parts = [];
      return;
    }
    this.#parts.push(value);
    if (this.#parts.length === this.#expected) {
      this.#complete = this.#parts;
      this.#generation = undefined;
      this.#parts = [];
    }
  }

  get latest(): Uint8Array | undefined {
    return this.#complete && Buffer.concat(this.#complete);
  }
}
