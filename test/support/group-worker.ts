// Child process for the consumer-group suite's "consumer killed mid-batch" test: joins a group,
// writes each event to a SQLite read model, and SIGKILLs itself right after writing the Nth
// event, before acknowledging it.
//   node group-worker.ts <backend> <prefix> <group> <read model file> <die after N>
// <backend>: `redis:<url>`, `kafka:<broker,broker…>`, `postgres:<url>` (the prefix is the schema) or
// `pulsar:<namespace>` (the broker of test/services/env.ts).
import { DatabaseSync } from 'node:sqlite';
import { createEventStore, type EventStoreDriver } from '../../src/index.ts';
import { kafka } from '../../src/backends/kafka/index.ts';
import { postgres } from '../../src/backends/postgres/index.ts';
import { pulsar } from '../../src/backends/pulsar/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL } from '../services/env.ts';
import { applyToReadModel } from './read-model.ts';

const [backend, prefix, group, file, dieAfterArg] = process.argv.slice(2);
const colon = backend!.indexOf(':');
const [kind, connection] = [backend!.slice(0, colon), backend!.slice(colon + 1)];
const dieAfter = Number(dieAfterArg);

function driver(): EventStoreDriver {
  if (kind === 'redis') return redis({ url: connection, prefix: prefix!, partitions: 2 });
  if (kind === 'postgres') return postgres({ connectionString: connection, schema: prefix! });
  // The same group timings as test/backends/kafka/consumer-groups.test.ts: the broker's floor for session timeouts is 6 s.
  if (kind === 'kafka')
    return kafka({
      brokers: connection.split(','),
      prefix: prefix!,
      partitions: 2,
      consumerGroups: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 },
    });
  if (kind === 'pulsar')
    return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace: connection, prefix: prefix!, partitions: 2 });
  throw new Error(`unknown backend ${backend}`);
}

const db = new DatabaseSync(file!);
db.exec('PRAGMA busy_timeout = 5000');
const store = createEventStore({ driver: driver(), events: [Deposited, Withdrawn] });
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
