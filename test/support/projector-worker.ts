// Child process for the SQL projection kill test: projects an SQLite event store into an
// SQLite read model until it is killed.
//   node projector-worker.ts <events.db> <read-model.db>
//   node projector-worker.ts <events.db> postgres <url> <schema>
import { DatabaseSync } from 'node:sqlite';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { createEventStore } from '../../src/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { balanceProjection, pgBalanceProjection } from './balance-projection.ts';

const [events, readModel, url, schema] = process.argv.slice(2);
const store = createEventStore({ driver: sqlite({ path: events!, busyTimeoutMs: 20_000 }), events: [Deposited, Withdrawn] });
if (readModel === 'postgres') {
  pgBalanceProjection(store, url!, schema!, { slow: true });
} else {
  const database = new DatabaseSync(readModel!);
  database.exec('PRAGMA busy_timeout = 20000');
  balanceProjection(store, database, { slow: true });
}
process.stdout.write('started\n');
