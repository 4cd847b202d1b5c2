import type { AppendRequest, AppendResult, EventStoreDriver, Position, StoredEvent, VersionRange } from './driver.ts';
import { InvalidArgumentError } from './errors.ts';
import { AppendRouter } from './log/append-router.ts';
import { LogStreams } from './log/log-streams.ts';
import { PartitionIndexes } from './log/partition-index.ts';
import { PartitionOwners } from './log/partition-owners.ts';

/**
 * Per-stream appends and reads, whichever kind the driver is: a conditional-append driver does
 * them itself; on a partition-owner driver (a log) the core does them from its partition index,
 * through leases. The one place in the core that tells the two kinds apart.
 */
export interface StreamAccess {
  /** Whether `appendMany` can append to several streams as one atomic step. */
  readonly multiStreamAppend: boolean;
  append(request: AppendRequest): Promise<AppendResult>;
  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  streamVersion(streamId: string, partition: number): Promise<number>;
  /** `after`: the position of the stream's event just before `fromVersion`, when known (a hint for logs). */
  readStream(streamId: string, partition: number, range: VersionRange & { after?: Position }): Promise<StoredEvent[]>;
  /** Gives up what it holds (leases) before the driver closes. */
  release(): Promise<void>;
}

/** Whether the driver can append to several streams (of one partition at least) as one atomic step. */
export function supportsAppendMany(driver: EventStoreDriver): boolean {
  return driver.concurrency === 'partition-owner' || driver.appendMany !== undefined;
}

export function streamAccess(driver: EventStoreDriver): StreamAccess {
  if (driver.concurrency === 'conditional-append') {
    const appendMany = driver.appendMany?.bind(driver);
    return {
      multiStreamAppend: supportsAppendMany(driver),
      append: (request) => driver.append(request),
      appendMany: (requests) => {
        if (!appendMany) throw new InvalidArgumentError(`the ${driver.name} backend cannot append to several streams atomically`);
        return appendMany(requests);
      },
      streamVersion: (streamId, partition) => driver.streamVersion(streamId, partition),
      readStream: (streamId, partition, { fromVersion, toVersion, limit }) =>
        driver.readStream(streamId, partition, { fromVersion, toVersion, limit }),
      release: async () => undefined,
    };
  }
  const indexes = new PartitionIndexes();
  // With routing, writer processes share the partitions out; without, a writer takes a
  // partition over when it appends there (partition-owners.ts).
  const owners = driver.routing ? new AppendRouter(driver, driver.routing, indexes) : new PartitionOwners(driver, indexes);
  const reads = new LogStreams(driver, indexes);
  return {
    multiStreamAppend: supportsAppendMany(driver),
    append: (request) => owners.append(request),
    appendMany: (requests) => {
      const partitions = new Set(requests.map((r) => r.partition));
      if (partitions.size > 1 && !driver.appendAcross) {
        throw new InvalidArgumentError(`the ${driver.name} backend cannot append to several partitions atomically`);
      }
      return owners.appendMany(requests);
    },
    streamVersion: (streamId, partition) => reads.streamVersion(streamId, partition),
    readStream: (streamId, partition, range) => reads.readStream(streamId, partition, range),
    release: () => (owners instanceof AppendRouter ? owners.close() : owners.releaseAll()),
  };
}
