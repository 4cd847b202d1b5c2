import type { IndexCheckpointKind, PartitionOwnerDriver, StoredEvent } from '../driver.ts';
import { Exclusive } from '../exclusive.ts';
import { combineIndex, encodeIndex, encodeIndexDelta } from './index-checkpoint.ts';

/** Events read per page while an index catches up. */
const CATCH_UP_PAGE = 1000;
/** Event ids a checkpoint carries: the partition's most recent ones (see `checkpoint`). */
export const CHECKPOINT_IDS = 10_000;
/** Event ids an index keeps in memory for the duplicate check: at least the partition's most recent ones. */
export const ID_WINDOW = 100_000;
/**
 * Ids past the window before the oldest are dropped, all at once. Dropping one per event would
 * be quadratic: a Map's iterator walks over the holes its deletes leave until the table is
 * rehashed (100,000 single drops took 2–7 s, against ~0.15 s for 200,000 events this way).
 */
export const ID_WINDOW_SLACK = ID_WINDOW / 8;

/**
 * What the core knows of one partition of a log backend, complete up to offset `through`: where
 * each stream's events are (so its version) and which event ids are stored. One index per
 * partition serves both reads (a stream's events, from its offsets) and a writer's checks (the
 * expected version, duplicate ids). It only grows: a log never changes what it holds.
 *
 * Memory, per event: one offset in a packed array of doubles (8 bytes); per stream, a map entry,
 * the name and an array (~100 bytes); and the last `ID_WINDOW` to `ID_WINDOW + ID_WINDOW_SLACK`
 * event ids of the partition (the id string, ~16 + its length bytes, a hash-map slot and a
 * small-integer offset: ~90 bytes each for 36-character ids, so at most ~10 MiB per partition). `bench/cold-load.ts` measures it.
 *
 * Duplicate ids (driver contract point 5) are refused over that window: an id among the last
 * `ID_WINDOW` of the partition this process has read or written (after a restore: among the
 * checkpoint's last `CHECKPOINT_IDS` and those since). An exact retry with an expected version
 * is recognised whatever its age (the core compares the stream's events at those versions).
 *
 * Cold start: where the driver keeps index checkpoints (`readIndexCheckpoints`), a new index
 * starts from the last full one and the last delta after it (index-checkpoint.ts) and reads only
 * the partition's tail after them. A checkpoint is exact by construction: the index is a
 * function of the log up to `through`, and the log up to there never changes. It carries every
 * stream's offsets but only the partition's last `CHECKPOINT_IDS` event ids (a full one and its
 * delta: the last of each).
 */
export class PartitionIndex {
  readonly partition: number;
  /** Stream id -> offset of each version (index = version - 1), as numbers: offsets stay below 2^53. */
  readonly #streams = new Map<string, number[]>();
  /** Event id -> its offset. */
  readonly #ids = new Map<string, number>();
  #through: bigint | undefined;
  #events = 0;
  readonly #catchUp = new Exclusive();
  /** Whether the driver's checkpoint was looked for (once, before the first scan). */
  #restoreTried = false;
  /** Whether a full checkpoint was written or restored, its `through` and its events. */
  #hasFull = false;
  #fullThrough: bigint | undefined;
  #fullEvents = 0;
  /** Counts the full checkpoints made or restored, so a failed one is taken back only if it is the last. */
  #fullMark = 0;
  /** Events indexed when the last checkpoint (full or delta) was written or restored. */
  #checkpointEvents = 0;
  /** Streams that grew since the last full checkpoint: what a delta holds. */
  readonly #grown = new Set<string>();

  constructor(partition: number) {
    this.partition = partition;
  }

  /** Offset up to which the index is complete; undefined before it has seen anything. */
  get through(): bigint | undefined {
    return this.#through;
  }

  /** Events indexed so far. */
  get size(): number {
    return this.#events;
  }

  /**
   * Which checkpoint to write now, if any: none until the index has grown by `every` events
   * since the last one; then a delta, unless the last full checkpoint is missing or the index
   * has grown by a quarter since it (so a delta stays under a quarter of a full one, and full
   * checkpoints of a long history are spaced wider: their total size stays a few times one's).
   */
  checkpointDue(every: number): IndexCheckpointKind | undefined {
    if (this.#events - this.#checkpointEvents < every) return undefined;
    return this.#hasFull && this.#events - this.#fullEvents < this.#fullEvents / 4 ? 'delta' : 'full';
  }

  version(streamId: string): number {
    return this.#streams.get(streamId)?.length ?? 0;
  }

  /** Offset of a stream's event at `version`, if indexed. */
  offsetOf(streamId: string, version: number): bigint | undefined {
    const offset = this.#streams.get(streamId)?.[version - 1];
    return offset === undefined ? undefined : BigInt(offset);
  }

  /** Where an event id is stored: its offset, or undefined. */
  idOffset(id: string): bigint | undefined {
    const offset = this.#ids.get(id);
    return offset === undefined ? undefined : BigInt(offset);
  }

  /**
   * Adds an event past `through` (the log's next one, in offset order). Events at or below
   * `through` are already in: a catch-up page that overlaps the writer's own appends skips them.
   */
  add(event: Pick<StoredEvent, 'id' | 'streamId' | 'version' | 'position'>): void {
    const offset = event.position.offset;
    if (this.#through !== undefined && offset <= this.#through) return;
    let offsets = this.#streams.get(event.streamId);
    if (!offsets) {
      offsets = [];
      this.#streams.set(event.streamId, offsets);
    }
    // A version out of line is a record the log holds twice or out of order (a foreign writer):
    // readers skip it too (the driver reads by version), so the index must not count it.
    if (event.version === offsets.length + 1) {
      offsets.push(Number(offset));
      this.#grown.add(event.streamId);
      this.#ids.set(event.id, Number(offset));
      this.#events++;
      if (this.#ids.size > ID_WINDOW + ID_WINDOW_SLACK) this.#dropOldIds();
    }
    this.#through = offset;
  }

  /** Marks the index complete up to `offset` (markers and foreign records past the last event). */
  advance(offset: bigint): void {
    if (this.#through === undefined || offset > this.#through) this.#through = offset;
  }

  /**
   * Reads the partition from `through` on and adds what it finds: up to `end` (an offset the
   * caller knows is committed) or, without it, to what readers see now. One catch-up at a time;
   * a caller that waited for another's finds the work done.
   */
  catchUp(driver: PartitionOwnerDriver, end?: bigint): Promise<void> {
    return this.#catchUp.run(async () => {
      if (!this.#restoreTried) {
        this.#restoreTried = true;
        if (this.#through === undefined && driver.readIndexCheckpoints) {
          // A checkpoint that cannot be read only costs the scan it would have saved.
          const checkpoints = await driver.readIndexCheckpoints(this.partition).catch(() => undefined);
          if (checkpoints) this.#restore(checkpoints.full, checkpoints.delta);
        }
      }
      while (end === undefined || this.#through === undefined || this.#through < end) {
        const page = await driver.readPartition(this.partition, { after: this.#through, limit: CATCH_UP_PAGE });
        for (const event of page) {
          if (end !== undefined && event.position.offset > end) return;
          this.add(event);
        }
        if (page.length < CATCH_UP_PAGE) return;
      }
    });
  }

  /** Drops the oldest ids down to `ID_WINDOW`, in one pass (see `ID_WINDOW_SLACK`). */
  #dropOldIds(): void {
    let drop = this.#ids.size - ID_WINDOW;
    for (const id of this.#ids.keys()) {
      if (drop-- <= 0) break;
      this.#ids.delete(id);
    }
  }

  /**
   * The index as checkpoint bytes, complete up to `through` (which it returns too). Full: every
   * stream's offsets and the last `CHECKPOINT_IDS` event ids. Delta (after a full one): the
   * offsets of the streams that grew since it and the last `CHECKPOINT_IDS` ids since it.
   */
  checkpoint(kind: IndexCheckpointKind = 'full'): { bytes: Uint8Array; through: bigint | undefined; failed: () => void } {
    if (kind === 'delta' && this.#hasFull && this.#fullThrough !== undefined) {
      const end = Number(this.#fullThrough);
      const streams = new Map<string, number[]>();
      for (const streamId of this.#grown) {
        const offsets = this.#streams.get(streamId)!;
        streams.set(streamId, offsets.slice(firstPast(offsets, end)));
      }
      const ids: [string, number][] = [];
      for (const entry of this.#ids) if (entry[1] > end) ids.push(entry);
      const bytes = encodeIndexDelta({ from: this.#fullThrough, through: this.#through, streams, ids: ids.slice(-CHECKPOINT_IDS) });
      this.#checkpointEvents = this.#events;
      // A delta that was not stored leaves the last one in place: nothing to take back.
      return { bytes, through: this.#through, failed: () => undefined };
    }
    const ids = [...this.#ids];
    const bytes = encodeIndex({ through: this.#through, streams: this.#streams, ids: ids.slice(-CHECKPOINT_IDS) });
    const before = { hasFull: this.#hasFull, through: this.#fullThrough, events: this.#fullEvents, grown: [...this.#grown] };
    this.#markFull(this.#through, this.#events);
    const mark = this.#fullMark;
    this.#grown.clear();
    // A full checkpoint that was not stored must not be the base of the next deltas (the stored
    // one is older: deltas against this one would be ignored, and the cold tail grow): back to
    // the last stored one, unless another full one was made since. The interval still counts,
    // so a failing write is tried again one interval later, not on every append.
    const failed = (): void => {
      if (this.#fullMark !== mark) return;
      this.#hasFull = before.hasFull;
      this.#fullThrough = before.through;
      this.#fullEvents = before.events;
      for (const streamId of before.grown) this.#grown.add(streamId);
    };
    return { bytes, through: this.#through, failed };
  }

  #markFull(through: bigint | undefined, events: number): void {
    this.#fullMark++;
    this.#hasFull = true;
    this.#fullThrough = through;
    this.#fullEvents = events;
    this.#checkpointEvents = this.#events;
  }

  /** Starts the (empty) index from checkpoints; unreadable ones are ignored (the scan starts from the beginning). */
  #restore(full: Uint8Array | undefined, delta: Uint8Array | undefined): void {
    const restored = combineIndex(full, delta);
    if (!restored || this.#through !== undefined) return;
    let events = 0;
    for (const [streamId, offsets] of restored.state.streams) {
      this.#streams.set(streamId, offsets);
      events += offsets.length;
    }
    for (const [id, offset] of restored.state.ids) this.#ids.set(id, offset);
    for (const streamId of restored.grown) this.#grown.add(streamId);
    this.#through = restored.state.through;
    this.#events = events;
    this.#markFull(restored.fullThrough, restored.fullEvents);
  }
}

/** Index of the first offset past `end` in ascending `offsets` (its length when none is). */
function firstPast(offsets: readonly number[], end: number): number {
  let low = 0;
  let high = offsets.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (offsets[mid]! > end) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** The store's indexes, one per partition, made on first use. */
export class PartitionIndexes {
  readonly #indexes = new Map<number, PartitionIndex>();

  of(partition: number): PartitionIndex {
    let index = this.#indexes.get(partition);
    if (!index) {
      index = new PartitionIndex(partition);
      this.#indexes.set(partition, index);
    }
    return index;
  }

  /** The index of a partition if one was made. */
  peek(partition: number): PartitionIndex | undefined {
    return this.#indexes.get(partition);
  }
}
