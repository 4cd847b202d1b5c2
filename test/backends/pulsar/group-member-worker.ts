// Child process for the two-process consumer-group test: one consumer of a group on the Pulsar
// standalone, writing each event to a shared SQLite read model (with the partition it came
// from), a few milliseconds per event, until it is killed.
//   node group-member-worker.ts <namespace> <prefix> <group> <consumer> <read model file>
import { DatabaseSync } from 'node:sqlite';
import { createEventStore } from '../../../src/index.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL } from '../../services/env.ts';
import { applyToReadModel } from '../../../src/testing/conformance/read-model.ts';

const [namespace, prefix, group, consumer, file] = process.argv.slice(2) as [string, string, string, string, string];
const db = new DatabaseSync(file);
db.exec('PRAGMA busy_timeout = 5000');
const store = createEventStore({
  driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 }),
  events: [Deposited, Withdrawn],
});
const c = store.consume({
  group,
  consumer,
  batchSize: 10,
  blockMs: 100,
  handler: async (event) => {
    await new Promise((r) => setTimeout(r, 5));
    applyToReadModel(db, event, consumer);
    db.prepare('INSERT INTO partitions VALUES (?, ?, ?)').run(event.id, consumer, event.position.partition);
  },
});

// A consumer that stopped by itself (the store refused to open, say) ends the process, loudly.
c.done.catch((error: unknown) => {
  console.error(`worker ${consumer} stopped:`, error);
  process.exit(3);
});
