// Index checkpoints on Kafka: the core's index of a store partition (core/log/partition-index.ts)
// as a few records of `<prefix>.index` (`<prefix>.index-<category>` for a category's topic),
// a compacted topic partitioned like its events topic. A checkpoint is written by the
// partition's owner in one transaction (so a reader sees all of its chunks or none), in chunks
// of at most CHUNK_BYTES, keyed `chunk-<i>` (a full checkpoint) or `delta-<i>` (a delta):
// compaction keeps the latest checkpoint's chunks of each kind. A cold process reads them
// backwards (index-checkpoint-read.ts), so older ones the cleaner has not removed yet are not read.
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

/** Topic configuration of an index topic: compacted, and compacted soon, so old checkpoints do not pile up on disk. */
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

/** A record's checkpoint headers and bytes; undefined for a record that is no checkpoint chunk. */
interface Chunk {
  readonly generation: string;
  readonly part: number;
  readonly parts: number;
  readonly delta: boolean;
  readonly value: Buffer;
}

function chunkOf(record: LogRecord): Chunk | undefined {
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
  if (generation === undefined || !record.value || !Number.isInteger(part) || !Number.isInteger(parts)) return undefined;
  if (part < 0 || part >= parts) return undefined;
  return { generation, part, parts, delta, value: record.value };
}

/**
 * Finds the last complete full checkpoint and the last complete delta written after it in an
 * index partition read backwards: windows from the end down, each window's records given in
 * offset order. A checkpoint's chunks are consecutive among its kind's records (one
 * transaction; aborted records and markers are never given), but may straddle two windows. A
 * run that breaks off (a torn write, strays of older checkpoints that compaction left) is
 * skipped, so the previous complete one of that kind is taken. Done at the first complete full
 * checkpoint: a delta older than it extends an older full one, so nothing below it is wanted.
 */
export class CheckpointSearch {
  readonly #full = new BackwardRun();
  readonly #delta = new BackwardRun();

  /** Feeds the records just below every record fed so far, in offset order. Returns whether the search is done. */
  addWindow(records: readonly LogRecord[]): boolean {
    for (let i = records.length - 1; i >= 0 && !this.done; i--) {
      const chunk = chunkOf(records[i]!);
      if (chunk) (chunk.delta ? this.#delta : this.#full).add(chunk);
    }
    return this.done;
  }

  /** Whether the last complete full checkpoint was found (with the last delta after it, if any). */
  get done(): boolean {
    return this.#full.found !== undefined;
  }

  /** What was found so far: once done, or once the partition's start was fed, the answer. */
  get result(): IndexCheckpoints {
    return { full: this.#full.bytes, delta: this.#delta.bytes };
  }
}

/** The chunks of one kind, fed last first: the first run of parts n-1 … 0 of one generation. */
class BackwardRun {
  #generation: string | undefined;
  #parts = 0;
  /** The part expected next (going down). */
  #next = -1;
  #chunks: Buffer[] = [];
  /** The last complete checkpoint's chunks, in order: slices of the fetched records, joined only once asked for. */
  found: Buffer[] | undefined;

  add(chunk: Chunk): void {
    if (this.found) return;
    if (chunk.generation === this.#generation && chunk.parts === this.#parts && chunk.part === this.#next) {
      this.#chunks.push(chunk.value);
      this.#next--;
    } else if (chunk.part === chunk.parts - 1) {
      // A last chunk: a checkpoint may end here (the run above, if any, broke off).
      this.#generation = chunk.generation;
      this.#parts = chunk.parts;
      this.#chunks = [chunk.value];
      this.#next = chunk.part - 1;
    } else {
      this.#generation = undefined;
      this.#chunks = [];
      return;
    }
    if (this.#next < 0) this.found = this.#chunks.reverse();
  }

  get bytes(): Uint8Array | undefined {
    return this.found && Buffer.concat(this.found);
  }
}
