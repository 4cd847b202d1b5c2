import type { EventStoreDriver, StreamPage } from './driver.ts';
import { InvalidArgumentError } from './errors.ts';
import { combineIndex } from './log/index-checkpoint.ts';

const SCAN_PAGE = 1000;

/**
 * A page of the store's streams and their versions, for tools: the driver's `listStreams` where
 * it has one (SQLite, Redis); otherwise derived here, one partition per page (cursor: the next
 * partition), so a page may hold many more than `limit`. On a log with index checkpoints
 * (Kafka) a partition costs its last checkpoint plus the events after it, as a cold writer's
 * catch-up does; anywhere else, a scan of the partition.
 */
export async function listStreams(driver: EventStoreDriver, page: { cursor: string | undefined; limit: number }): Promise<StreamPage> {
  if (driver.listStreams) return driver.listStreams(page);
  const partition = page.cursor === undefined ? 0 : Number(page.cursor);
  if (!Number.isSafeInteger(partition) || partition < 0)
    throw new InvalidArgumentError(`invalid stream list cursor ${JSON.stringify(page.cursor)}`);
  if (partition >= driver.partitions) return { streams: [], cursor: undefined };
  const versions = new Map<string, number>();
  let after: bigint | undefined;
  if (driver.concurrency === 'partition-owner' && driver.readIndexCheckpoints) {
    const checkpoints = await driver.readIndexCheckpoints(partition);
    const state = combineIndex(checkpoints.full, checkpoints.delta)?.state;
    if (state) {
      for (const [streamId, offsets] of state.streams) versions.set(streamId, offsets.length);
      after = state.through;
    }
  }
  for (;;) {
    const events = await driver.readPartition(partition, { after, limit: SCAN_PAGE });
    // As the partition index counts: a version out of line (a foreign or duplicated record) is skipped by readers too.
    for (const e of events) if (e.version === (versions.get(e.streamId) ?? 0) + 1) versions.set(e.streamId, e.version);
    if (events.length < SCAN_PAGE) break;
    after = events[events.length - 1]!.position.offset;
  }
  const streams = [...versions]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([streamId, version]) => ({ streamId, partition, version }));
  return { streams, cursor: partition + 1 < driver.partitions ? String(partition + 1) : undefined };
}
