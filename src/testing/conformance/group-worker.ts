// Child process of the consumer-group suite's "consumer killed mid-batch" test: opens the
// driver with the target's module, joins a group, writes each event to a SQLite read model,
// and SIGKILLs itself right after writing the Nth event, before acknowledging it.
//   node group-worker.js <driver module URL> <arg> <prefix> <group> <read model file> <die after N>
// The driver module exports `openDriver(prefix, arg)`.
import { DatabaseSync } from 'node:sqlite';
import { createEventStore, type EventStoreDriver } from '../../index.ts';
import { Deposited, Withdrawn } from './fixtures.ts';
import { applyToReadModel } from './read-model.ts';

const [moduleUrl, arg, prefix, group, file, dieAfterArg] = process.argv.slice(2);
const dieAfter = Number(dieAfterArg);

const loaded = (await import(moduleUrl!)) as {
  openDriver?: (prefix: string, arg?: string) => EventStoreDriver | Promise<EventStoreDriver>;
};
if (typeof loaded.openDriver !== 'function') throw new Error(`${moduleUrl} does not export openDriver(prefix, arg)`);
const driver = await loaded.openDriver(prefix!, arg === '' ? undefined : arg);

const db = new DatabaseSync(file!);
db.exec('PRAGMA busy_timeout = 5000');
const store = createEventStore({ driver, events: [Deposited, Withdrawn] });
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
