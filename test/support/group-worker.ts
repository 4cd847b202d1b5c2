// Child process for the "consumer killed mid-batch" test: joins a Redis consumer group, writes
// each event to a SQLite read model, and SIGKILLs itself right after writing the Nth event,
// before acknowledging it.
//   node group-worker.ts <redis url> <prefix> <group> <read model file> <die after N>
import { DatabaseSync } from 'node:sqlite';
import { createEventStore } from '../../src/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { applyToReadModel } from './read-model.ts';

const [url, prefix, group, file, dieAfterArg] = process.argv.slice(2);
const dieAfter = Number(dieAfterArg);
const db = new DatabaseSync(file!);
db.exec('PRAGMA busy_timeout = 5000');
const store = createEventStore({ driver: redis({ url: url!, prefix: prefix!, partitions: 2 }), events: [Deposited, Withdrawn] });
let seen = 0;
store.consume({
  group: group!,
  consumer: 'doomed',
  batchSize: 10,
  handler: (event) => {
    applyToReadModel(db, event, 'doomed');
    if (++seen === dieAfter) process.kill(process.pid, 'SIGKILL');
  },
});
