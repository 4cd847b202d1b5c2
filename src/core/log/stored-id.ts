import type { AppendRequest, PartitionOwnerDriver } from '../driver.ts';
import { DuplicateEventIdError } from '../errors.ts';
import type { PartitionIndex } from './partition-index.ts';

/**
 * The writer's duplicate-id check on a log: the error for the first event id of `request` the
 * partition's index holds (its window of recent ids), naming the stored event it belongs to,
 * which is read back at the offset the index gives. Undefined when no id is stored.
 */
export async function storedIdError(
  driver: PartitionOwnerDriver,
  index: PartitionIndex,
  request: AppendRequest,
): Promise<DuplicateEventIdError | undefined> {
  for (const event of request.events) {
    const offset = index.idOffset(event.id);
    if (offset === undefined) continue;
    const [stored] = await driver.readPartition(index.partition, { after: offset === 0n ? undefined : offset - 1n, limit: 1 });
    const existing = stored?.id === event.id ? { streamId: stored.streamId, version: stored.version } : { streamId: '?', version: 0 };
    return new DuplicateEventIdError(event.id, existing, driver.name);
  }
  return undefined;
}
