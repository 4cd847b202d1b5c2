import { openDriver } from '../connect/open-driver.ts';
import { parseConnectionUrl } from '../connect/connection-url.ts';
import type {
  ConsumerGroupDriver,
  ConsumerGroupPartition,
  DeadLetter,
  EventStoreDriver,
  Position,
  StoredEvent,
  StreamPage,
} from '../core/driver.ts';
import { partitionOf } from '../core/partition.ts';
import { offsetBeforeTime } from '../core/partition-time.ts';
import { RuntimeDriver } from '../core/runtime-driver.ts';
import { SubscriptionPositions } from '../core/subscription.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { streamAccess, type StreamAccess } from '../core/stream-access.ts';
import { listStreams } from '../core/stream-list.ts';
import { assertStreamName } from '../core/stream-name.ts';

const PAGE = 500;

/**
 * What the CLI sees of a store: read-only access to the stored events as the driver has them
 * (bytes, not decoded: decoding is the caller's, with or without the user's event types), through
 * the core's own lifecycle wrapper and per-stream reads (the partition index on a log).
 */
export class Inspector {
  readonly url: string;
  readonly #runtime: RuntimeDriver;
  readonly #streams: StreamAccess;
  #subscriptions: SubscriptionPositions | undefined;

  private constructor(driver: EventStoreDriver, url: string) {
    this.url = url;
    this.#runtime = new RuntimeDriver(driver);
    this.#streams = streamAccess(driver);
  }

  static async open(url: string, env: NodeJS.ProcessEnv): Promise<Inspector> {
    const driver = await openDriver(url, { env });
    return new Inspector(driver, parseConnectionUrl(url).redacted);
  }

  get backend(): string {
    return this.#runtime.driver.name;
  }

  get partitions(): number {
    return this.#runtime.driver.partitions;
  }

  /** Whether the backend can name its subscription groups (else the user names them). */
  get listsGroups(): boolean {
    return this.#runtime.driver.listCheckpointGroups !== undefined;
  }

  partitionOf(streamId: string): number {
    assertStreamName(streamId);
    const d = this.#runtime.driver;
    return d.partitionOf ? d.partitionOf(streamId) : partitionOf(streamId, d.partitions);
  }

  listStreams(cursor: string | undefined, limit: number): Promise<StreamPage> {
    return this.#runtime.use((d) => listStreams(d, { cursor, limit }));
  }

  async *allStreams(): AsyncGenerator<StreamPage['streams'][number]> {
    let cursor: string | undefined;
    do {
      const page = await this.listStreams(cursor, PAGE);
      yield* page.streams;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  streamVersion(streamId: string): Promise<number> {
    const partition = this.partitionOf(streamId);
    return this.#runtime.use(() => this.#streams.streamVersion(streamId, partition));
  }

  /** A stream's stored events from `fromVersion`, oldest first, at most `max`. */
  async *readStream(streamId: string, fromVersion: number, max: number): AsyncGenerator<StoredEvent> {
    const partition = this.partitionOf(streamId);
    let from = fromVersion;
    let left = max;
    let after: Position | undefined;
    while (left > 0) {
      const limit = Math.min(PAGE, left);
      const range = { fromVersion: from, toVersion: Number.MAX_SAFE_INTEGER, limit, ...(after ? { after } : {}) };
      const page = await this.#runtime.use(() => this.#streams.readStream(streamId, partition, range));
      yield* page;
      if (page.length < limit) return;
      left -= page.length;
      from = page[page.length - 1]!.version + 1;
      after = page[page.length - 1]!.position;
    }
  }

  /** A partition's stored events after `after` (all when undefined), oldest first. */
  async *scanPartition(partition: number, after: bigint | undefined, until?: bigint): AsyncGenerator<StoredEvent> {
    let cursor = after;
    for (;;) {
      const page = await this.readPartition(partition, cursor, PAGE);
      for (const event of page) {
        if (until !== undefined && event.position.offset > until) return;
        yield event;
      }
      if (page.length < PAGE) return;
      cursor = page[page.length - 1]!.position.offset;
    }
  }

  readPartition(partition: number, after: bigint | undefined, limit: number): Promise<StoredEvent[]> {
    return this.#runtime.use((d) => d.readPartition(partition, { after, limit }));
  }

  head(partition: number): Promise<bigint | undefined> {
    return this.#runtime.use((d) => d.partitionHead(partition));
  }

  async heads(): Promise<(bigint | undefined)[]> {
    return Promise.all(Array.from({ length: this.partitions }, (_, p) => this.head(p)));
  }

  listGroups(): Promise<string[]> {
    return this.#runtime.use(async (d) => (d.listCheckpointGroups ? d.listCheckpointGroups() : []));
  }

  checkpoint(group: string): Promise<readonly Position[] | undefined> {
    return this.#runtime.use((d) => d.readCheckpoint(group));
  }

  writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    return this.#runtime.use((d) => d.writeCheckpoint(group, positions));
  }

  /** The offset to read `partition` after so the first event read is the first at or after `time`. */
  offsetBeforeTime(partition: number, time: number): Promise<bigint | undefined> {
    return this.#runtime.use((d) => offsetBeforeTime(d, partition, time));
  }

  /**
   * The offset to read `partition` after so the first event read is the first appended at or
   * after `time`: from the driver's time index, then past any earlier events it lands before
   * (an index may answer early); undefined to read from the start.
   */
  async offsetAfterEventsBefore(partition: number, time: number): Promise<bigint | undefined> {
    const start = await this.offsetBeforeTime(partition, time);
    let after = start;
    for await (const event of this.scanPartition(partition, start)) {
      if (event.time >= time) return after;
      after = event.position.offset;
    }
    return after;
  }

  /** The core's positions of subscription groups: read, seek, reset. */
  get subscriptions(): SubscriptionPositions {
    this.#subscriptions ??= new SubscriptionPositions(this.#runtime);
    return this.#subscriptions;
  }

  /** The backend's native consumer groups (`store.consume`); a typed error where it has none. */
  consumerGroups(): ConsumerGroupDriver {
    const groups = this.#runtime.driver.consumerGroups;
    if (!groups) {
      throw new InvalidArgumentError(
        `the ${this.backend} backend has no native consumer groups (store.consume), so no dead letters either; subscription groups are under \`eventfold groups\``,
      );
    }
    return groups;
  }

  async resetConsumerGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    const groups = this.consumerGroups();
    await this.#runtime.use(() => groups.resetGroup(group, to));
  }

  /** Where a native consumer group is in each partition; undefined when there is no such group. */
  async describeConsumerGroup(group: string): Promise<readonly ConsumerGroupPartition[] | undefined> {
    const groups = this.consumerGroups();
    if (!groups.describeGroup) throw new InvalidArgumentError(`the ${this.backend} backend cannot describe its consumer groups`);
    const describe = groups.describeGroup.bind(groups);
    return this.#runtime.use(() => describe(group));
  }

  deadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    const groups = this.consumerGroups();
    return this.#runtime.use(() => groups.listDeadLetters(group, limit));
  }

  redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const groups = this.consumerGroups();
    return this.#runtime.use(() => groups.redrive(group, ids));
  }

  /** Resolves when new events may be there: the driver's blocking wait where it has one, at most `pollMs` later. */
  async waitForEvents(after: readonly Position[], signal: AbortSignal, pollMs: number): Promise<void> {
    const wake = new AbortController();
    const onAbort = () => wake.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => wake.abort(), pollMs);
    try {
      const d = this.#runtime.driver;
      await (d.waitForEvents
        ? this.#runtime.use((driver) => driver.waitForEvents!(after, wake.signal))
        : new Promise<void>((resolve) => wake.signal.addEventListener('abort', () => resolve(), { once: true })));
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await this.#runtime.close(() => this.#streams.release());
  }
}
