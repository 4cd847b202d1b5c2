import type { PartitionOwnerDriver, Position, StoredEvent, VersionRange } from '../driver.ts';
import type { PartitionIndexes } from './partition-index.ts';

/**
 * Per-stream reads on a log backend, from the core's partition index: the index says at which
 * offsets a stream's events are; `readPartition` filtered by the stream id fetches them.
 */
export class LogStreams {
  readonly #driver: PartitionOwnerDriver;
  readonly #indexes: PartitionIndexes;

  constructor(driver: PartitionOwnerDriver, indexes: PartitionIndexes) {
    this.#driver = driver;
    this.#indexes = indexes;
  }

  async streamVersion(streamId: string, partition: number): Promise<number> {
    const index = this.#indexes.of(partition);
    await index.catchUp(this.#driver);
    return index.version(streamId);
  }

  /**
   * `after` is a hint: the position of the stream's event just before `fromVersion` (a
   * snapshot's, or the previous page's last). When this process has not indexed the partition
   * that far, the stream's tail is read from there instead of indexing the whole partition
   * first, so a cold load from a snapshot costs the tail, not the partition.
   */
  async readStream(streamId: string, partition: number, range: VersionRange & { after?: Position }): Promise<StoredEvent[]> {
    const known = this.#indexes.peek(partition);
    const after = range.after?.partition === partition ? range.after.offset : undefined;
    if (after !== undefined && (known?.through === undefined || known.through < after)) {
      return this.#readTail(streamId, partition, after, range);
    }
    const index = this.#indexes.of(partition);
    await index.catchUp(this.#driver);
    const last = Math.min(range.toVersion, index.version(streamId), range.fromVersion + range.limit - 1);
    if (range.fromVersion > last) return [];
    const want = last - range.fromVersion + 1;
    if (this.#driver.readAt) {
      const offsets = Array.from({ length: want }, (_, i) => index.offsetOf(streamId, range.fromVersion + i)!);
      const events = await this.#driver.readAt(partition, offsets);
      return events.filter((e) => e.streamId === streamId && e.version >= range.fromVersion && e.version <= last);
    }
    const first = index.offsetOf(streamId, range.fromVersion)!;
    const events = await this.#driver.readPartition(partition, { after: first === 0n ? undefined : first - 1n, limit: want, streamId });
    return events.filter((e) => e.version >= range.fromVersion && e.version <= last);
  }

  /** The stream's events past offset `after` of its partition, filtered by the stream id. */
  async #readTail(streamId: string, partition: number, after: bigint, range: VersionRange): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    let cursor = after;
    for (;;) {
      const page = await this.#driver.readPartition(partition, { after: cursor, limit: range.limit, streamId });
      for (const event of page) {
        if (event.version < range.fromVersion) continue;
        if (event.version > range.toVersion) return out;
        out.push(event);
        if (out.length >= range.limit) return out;
      }
      if (page.length < range.limit) return out;
      cursor = page[page.length - 1]!.position.offset;
    }
  }
}
