import type { AppendRequest, AppendResult, StoredEvent } from './driver.ts';
import { DuplicateEventIdError, ExpectedVersionConflictError } from './errors.ts';
import type { StreamAccess } from './stream-access.ts';

/**
 * An append that failed on a version conflict or a duplicate id may be the retry of an append
 * that did succeed (its reply was lost). If the stream holds exactly these event ids at the
 * versions they would have had, report that earlier success instead of an error.
 */
export async function exactRetry(
  streams: StreamAccess,
  request: AppendRequest,
  error: unknown,
  inBatch = false,
): Promise<(AppendResult & { stored: readonly StoredEvent[] }) | undefined> {
  if (!(error instanceof DuplicateEventIdError || error instanceof ExpectedVersionConflictError)) return undefined;
  const expected = request.expectedVersion;
  let from: number | undefined;
  if (typeof expected === 'number') from = expected + 1;
  else if (expected === 'no_stream') from = 1;
  // Without a version to expect, only a duplicate id in this very stream says where to look.
  // (In a batch the error names one stream; the others are judged by their expected version.)
  if (error instanceof DuplicateEventIdError && error.existing.streamId === request.streamId && (from === undefined || !inBatch)) {
    const index = request.events.findIndex((e) => e.id === error.eventId);
    from = index === -1 ? undefined : error.existing.version - index;
  }
  if (from === undefined || from < 1) return undefined;
  const count = request.events.length;
  const stored = await streams.readStream(request.streamId, request.partition, {
    fromVersion: from,
    toVersion: from + count - 1,
    limit: count,
  });
  if (stored.length !== count || stored.some((s, i) => s.id !== request.events[i]!.id)) return undefined;
  return { nextExpectedVersion: from + count - 1, positions: stored.map((s) => s.position), stored };
}
