// Child process for the Kafka "consumer killed mid-batch" test: joins the group's Kafka consumer
// group, writes each event to a SQLite read model, and SIGKILLs itself right after writing the
// Nth event, before acknowledging it.
//   node group-worker.ts <brokers> <prefix> <group> <read model file> <die after N>
import { DatabaseSync } from 'node:sqlite';
import { createEventStore } from '../../src/index.ts';
import { kafka } from '../../src/backends/kafka/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { applyToReadModel } from '../support/read-model.ts';

const [brokers, prefix, group, file, dieAfterArg] = process.argv.slice(2);
const dieAfter = Number(dieAfterArg);
const db = new DatabaseSync(file!);
db.exec('PRAGMA busy_timeout = 5000');
const store = createEventStore({
  driver: kafka({ brokers: brokers!.split(','), prefix: prefix!, partitions: 2, consumerGroups: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 } }),
  events: [Deposited, Withdrawn],
});
let seen = 0;
store.consume({
  group: group!,
  consumer: 'doomed',
  batchSize: 10,
  blockMs: 100,
  handler: (event) => {
    applyToReadModel(db, event, 'doomed');
    if (++seen === dieAfter) process.kill(process.pid, 'SIGKILL');
  },
});
