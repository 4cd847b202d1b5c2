// eventfold's PostgreSQL driver against the services' PostgreSQL: per append one read of the
// stream's version and of the events' ids, then one INSERT of every row (unique constraints on
// stream+version and on the event id settle races), a pool of connections, the server's own
// durability (synchronous_commit as configured).
import { postgres } from '../../src/backends/postgres/index.ts';
import type { BenchTarget } from '../target.ts';
import { eventfoldTarget } from './eventfold.ts';
import { dropSchema, postgresUrl, schemaFor } from './postgres-common.ts';

export function eventfoldPostgres(): BenchTarget {
  return eventfoldTarget({
    driver: (dir) => postgres({ connectionString: postgresUrl(), schema: schemaFor(dir, 'ef') }),
    notes: [
      'eventfold: `postgres({ connectionString, schema })` (node-postgres pool, default size 10); an append is a SELECT of the current version and of the ids it carries, then one INSERT … SELECT FROM unnest(…) of all its events',
      'eventfold: each row carries offset (transaction id << 20 | index), id, stream, version, type, schema version, codec, payload (bytea), metadata, time; reads of the log wait for the stable prefix (no transaction older than the newest event still running); a trigger NOTIFYs live subscribers per INSERT',
    ],
    cleanup: async (dir) => void (await dropSchema(dir)),
  });
}
