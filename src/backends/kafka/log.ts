import {
  type Admin,
  fetchV17,
  FetchIsolationLevels,
  type FetchIsolationLevelValue,
  IS_CONTROL,
  IS_TRANSACTIONAL,
  ListOffsetTimestamps,
  type RecordsBatch,
} from '@platformatic/kafka';
import { DriverError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import { hasStaleMetadata, KAFKA as NAME } from './errors.ts';

/**
 * Largest fetch. The client decodes a fetch into ~16 Buffer views and ~8 arrays per record
 * (about 2.4 KB of V8 heap for a ~200-byte event), all alive at once and, through
 * `#lastFetch`, until the next fetch is decoded. At 4 MiB that is ~30 MB per page: more than
 * the young generation, so every page was promoted and a cold scan of 250k events peaked at
 * ~+450 MiB RSS with ~31 MiB kept by the cache. 256 KiB pages (~1.3k records, ~3 MB decoded)
 * mostly die young; a record batch larger than this still comes whole (the broker always
 * returns the first batch). bench/cold-load.ts measures it.
 */
const MAX_BYTES = 256 * 1024;

/** One data record of a partition, visible to read_committed readers. */
export interface LogRecord {
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly [Buffer | null, Buffer | null][];
  readonly timestamp: bigint;
}

export interface FetchResult {
  readonly records: LogRecord[];
  /** Offset to fetch next (past every batch this fetch returned, markers and aborted ones included). */
  readonly next: bigint;
  /** The partition's last stable offset: read_committed readers see nothing at or past it. */
  readonly lastStable: bigint;
  readonly logStart: bigint;
  /** Served from the previous fetch: `lastStable` is as it was then, so do not stop on it. */
  readonly fromCache?: boolean;
}

/**
 * Reads partitions with isolation level read_committed through the Fetch API directly, so the
 * driver controls what is filtered. The client library's own filter keys aborted ranges by
 * producer id and keeps only one range per producer; every writer of a partition here has the
 * same producer id (one transactional id per partition, epochs bumped by each claim), so two
 * aborted transactions in one fetch would leak the first one's records. This filter is the
 * Java consumer's: aborted transactions (from the fetch response) open a range at their first
 * offset that the producer's ABORT marker closes; control batches are never data.
 */
export class PartitionLog {
  readonly #admin: Admin;
  readonly #topics = new Map<string, { id: string; leaders: number[] }>();
  /**
   * The last fetch of each partition. A fetch returns up to 256 KiB while callers page through it
   * 100 or 500 events at a time; committed records below the last stable offset never change,
   * so the next page is served from here instead of fetching (and decoding) the same bytes again.
   */
  readonly #lastFetch = new Map<string, { from: bigint; result: FetchResult }>();

  /** Data records fetched from the broker so far (cache hits not counted). */
  recordsFetched = 0;

  constructor(admin: Admin) {
    this.#admin = admin;
  }

  /** Waits until the topic has a leader for every partition (topic creation is asynchronous). */
  async describe(topic: string, partitions: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const metadata = await this.#admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
      const t = metadata?.topics.get(topic);
      if (t && t.partitionsCount === partitions && t.partitions.every((p) => p && p.leader >= 0)) {
        this.#topics.set(topic, { id: t.id, leaders: t.partitions.map((p) => p.leader) });
        return;
      }
      if (t && t.partitionsCount !== partitions && t.partitionsCount > 0) {
        throw new DriverError(
          NAME,
          `topic ${topic} has ${t.partitionsCount} partitions, this store is configured for ${partitions}; the count is fixed for the life of the data`,
        );
      }
      if (Date.now() > deadline) throw new DriverError(NAME, `topic ${topic} has no leader for every partition after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /**
   * One read_committed fetch from `offset`; returns at once when nothing is there (maxWait 0).
   * `maxBytes` below the default makes it a probe: answered from the page cache when it can be,
   * but its (small) answer does not replace the cached page.
   */
  async fetch(topic: string, partition: number, offset: bigint, maxWaitMs = 0, maxBytes = MAX_BYTES): Promise<FetchResult> {
    const key = `${topic}/${partition}`;
    const cached = this.#lastFetch.get(key);
    if (cached && offset >= cached.from && offset < cached.result.next) {
      const records = cached.result.records.filter((r) => r.offset >= offset);
      if (records.length > 0) return { ...cached.result, records, fromCache: true };
    }
    const result = await this.#fetchWithRetry(topic, partition, offset, maxWaitMs, Math.min(maxBytes, MAX_BYTES));
    this.recordsFetched += result.records.length;
    // An empty answer (a caller checking for news at the end) must not evict the last page.
    if (result.records.length > 0 && maxBytes >= MAX_BYTES) this.#lastFetch.set(key, { from: offset, result });
    return result;
  }

  async #fetchWithRetry(topic: string, partition: number, offset: bigint, maxWaitMs: number, maxBytes: number): Promise<FetchResult> {
    for (let attempt = 0; ; attempt++) {
      const t = this.#topics.get(topic);
      if (!t) throw new DriverError(NAME, `topic ${topic} is not open`);
      try {
        return await this.#fetchOnce(t, topic, partition, offset, maxWaitMs, maxBytes);
      } catch (error) {
        // Leadership moved, or a new topic's partitions are not loaded yet (a leader in the
        // metadata may still answer NOT_LEADER_OR_FOLLOWER for a moment): refresh and retry.
        if (!hasStaleMetadata(error) || attempt >= 15) throw error;
        await sleep(Math.min(500, 10 * 2 ** attempt));
        await this.describe(topic, t.leaders.length);
      }
    }
  }

  async #fetchOnce(
    t: { id: string; leaders: number[] },
    topic: string,
    partition: number,
    offset: bigint,
    maxWaitMs: number,
    maxBytes: number,
  ): Promise<FetchResult> {
    const metadata = await this.#admin.metadata({ topics: [topic] });
    const broker = metadata.brokers.get(t.leaders[partition]!);
    if (!broker) throw new DriverError(NAME, `no broker for partition ${partition} of ${topic}`);
    const connection = await this.#admin.connections.get(broker);
    const response = await fetchV17.api.async(
      connection,
      maxWaitMs,
      1,
      maxBytes,
      FetchIsolationLevels.READ_COMMITTED,
      0,
      -1,
      [
        {
          topicId: t.id,
          partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: offset, lastFetchedEpoch: -1, partitionMaxBytes: maxBytes }],
        },
      ],
      [],
      '',
    );
    const p = response.responses[0]?.partitions.find((x) => x.partitionIndex === partition);
    if (!p) throw new DriverError(NAME, `fetch of ${topic}/${partition} returned no partition`);
    return {
      ...filterCommitted(p.records ?? [], p.abortedTransactions, offset, p.lastStableOffset),
      lastStable: p.lastStableOffset,
      logStart: p.logStartOffset,
    };
  }

  /**
   * A long-poll: resolves when any of the partitions has bytes past its offset (read_committed:
   * committed data or a marker) or after `maxWaitMs`. One Fetch per leader broker, raced.
   */
  async waitAny(topic: string, from: readonly bigint[], maxWaitMs: number): Promise<void> {
    const t = this.#topics.get(topic);
    if (!t) throw new DriverError(NAME, `topic ${topic} is not open`);
    const metadata = await this.#admin.metadata({ topics: [topic] });
    const byLeader = new Map<number, number[]>();
    from.forEach((_, partition) => {
      const leader = t.leaders[partition]!;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), partition]);
    });
    await Promise.race(
      [...byLeader].map(async ([leader, partitions]) => {
        const broker = metadata.brokers.get(leader);
        if (!broker) return;
        const connection = await this.#admin.connections.get(broker);
        await fetchV17.api.async(
          connection,
          maxWaitMs,
          1,
          64 * 1024,
          FetchIsolationLevels.READ_COMMITTED,
          0,
          -1,
          [
            {
              topicId: t.id,
              partitions: partitions.map((partition) => ({
                partition,
                currentLeaderEpoch: -1,
                fetchOffset: from[partition]!,
                lastFetchedEpoch: -1,
                partitionMaxBytes: 16 * 1024,
              })),
            },
          ],
          [],
          '',
        );
      }),
    );
  }

  /** Last stable offset (ListOffsets, read_committed): the first offset not yet readable. */
  lastStable(topic: string, partition: number): Promise<bigint> {
    return this.#listOffset(topic, partition, FetchIsolationLevels.READ_COMMITTED);
  }

  /** High watermark (ListOffsets, read_uncommitted): one past the last record written, committed or not. */
  highWatermark(topic: string, partition: number): Promise<bigint> {
    return this.#listOffset(topic, partition, FetchIsolationLevels.READ_UNCOMMITTED);
  }

  /** Log start offset (ListOffsets EARLIEST): retention and deleteRecords move it up; nothing below it can be fetched. */
  logStart(topic: string, partition: number): Promise<bigint> {
    return this.#listOffset(topic, partition, FetchIsolationLevels.READ_UNCOMMITTED, ListOffsetTimestamps.EARLIEST);
  }

  async #listOffset(
    topic: string,
    partition: number,
    isolationLevel: FetchIsolationLevelValue,
    timestamp: bigint = ListOffsetTimestamps.LATEST,
  ): Promise<bigint> {
    const [t] = await this.#admin.listOffsets({
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp }] }],
      isolationLevel,
    });
    const offset = t?.partitions.find((x) => x.partitionIndex === partition)?.offset;
    if (offset === undefined) throw new DriverError(NAME, `no offsets for ${topic}/${partition}`);
    return offset;
  }

  /** First offset whose record timestamp is >= `timestamp`, or undefined when there is none. */
  async offsetForTime(topic: string, partition: number, timestamp: bigint): Promise<bigint | undefined> {
    const [t] = await this.#admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp }] }] });
    const offset = t?.partitions.find((x) => x.partitionIndex === partition)?.offset;
    return offset === undefined || offset < 0n ? undefined : offset;
  }

  /**
   * Offset of the last committed data record (that `accept` takes), or undefined when there is
   * none. The last stable offset minus one is usually a transaction marker, which no reader ever
   * sees, so this looks back from the stable offset for the last record a read_committed reader gets.
   */
  async lastRecord(topic: string, partition: number, accept: (record: LogRecord) => boolean = () => true): Promise<bigint | undefined> {
    const end = await this.lastStable(topic, partition);
    let back = 8n;
    for (;;) {
      const start = end - back > 0n ? end - back : 0n;
      let last: bigint | undefined;
      for (let at = start; at < end; ) {
        const page = await this.fetch(topic, partition, at);
        for (const r of page.records) if (r.offset < end && accept(r)) last = r.offset;
        if (page.next <= at) break;
        at = page.next;
      }
      if (last !== undefined) return last;
      if (start === 0n) return undefined;
      back *= 16n;
    }
  }
}

/** The Java consumer's read_committed filter over one fetched partition. */
export function filterCommitted(
  batches: readonly RecordsBatch[],
  aborted: readonly { producerId: bigint; firstOffset: bigint }[],
  from: bigint,
  lastStable: bigint,
): { records: LogRecord[]; next: bigint } {
  const pending = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const abortedProducers = new Set<bigint>();
  const records: LogRecord[] = [];
  let next = from;
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (last >= next) next = last + 1n;
    while (pending.length > 0 && pending[0]!.firstOffset <= last) abortedProducers.add(pending.shift()!.producerId);
    const transactional = (batch.attributes & IS_TRANSACTIONAL) !== 0;
    if ((batch.attributes & IS_CONTROL) !== 0) {
      // Control record key: int16 version, int16 type (0 = ABORT, 1 = COMMIT).
      const key = batch.records[0]?.key;
      if (transactional && key && key.length >= 4 && key.readInt16BE(2) === 0) abortedProducers.delete(batch.producerId);
      continue;
    }
    if (transactional && abortedProducers.has(batch.producerId)) continue;
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta);
      if (offset < from || offset >= lastStable) continue;
      records.push({
        offset,
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp: batch.firstTimestamp + record.timestampDelta,
      });
    }
  }
  return { records, next };
}
