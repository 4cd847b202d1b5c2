import { eventColumns } from '../sql/event-sql.ts';
import { INDEX_BITS } from './schema.ts';

export { type EventRow, toStoredEvent } from '../sql/event-sql.ts';

/** The columns of `EventRow`, for SELECTs that join the events table (`e` is its alias). */
export const EVENT_COLUMNS = eventColumns({ events: '', snapshots: '', offsetColumn: 'off', snapshotOffsetColumn: 'off' });

/**
 * The stable prefix of the log, in one SQL expression: every offset below it belongs to a
 * transaction that has finished (committed and visible to this statement, or rolled back),
 * because it is below the oldest transaction still running when the statement's snapshot was
 * taken. An offset is its transaction id shifted left (schema.ts), so no transaction still
 * running can later commit an event below it.
 */
export const STABLE_BOUND = `(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << ${INDEX_BITS})`;

/** A view as a Buffer without copying (pg sends Buffers as bytea; inside arrays it wants Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
