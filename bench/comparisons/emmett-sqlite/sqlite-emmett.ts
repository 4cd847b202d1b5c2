// Emmett's SQLite event store (@event-driven-io/emmett-sqlite 0.38.5), used as its docs show:
// `getSQLiteEventStore({ fileName })`. It runs on the `sqlite3` native addon (SQLite 3.44),
// sets journal_mode=WAL and leaves synchronous at SQLite's default, FULL — the same durability
// as eventfold. For a file database it opens a new connection for every operation and closes
// it afterwards; that is part of what is measured.
import { join } from 'node:path';
import type { Event } from '@event-driven-io/emmett';
import { getSQLiteEventStore, type SQLiteEventStore } from '@event-driven-io/emmett-sqlite';
import { evolveBench, initialBenchState, type BenchEventData, type BenchState, type BenchTarget, type CatchUp } from '../../target.ts';

type Deposited = Event<'Deposited', BenchEventData>;

/** Emmett 0.38.5 sometimes fails a commit with this; see `append` below. */
const isBusy = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === 'SQLITE_BUSY';
const MAX_BUSY_RETRIES = 5;

export function emmettSqlite(): BenchTarget {
  let store: SQLiteEventStore | undefined;
  let busyRetries = 0;
  const consoleLog = console.log;
  const open = (): SQLiteEventStore => {
    if (!store) throw new Error('Emmett target is not open');
    return store;
  };

  const notes = [
    'Emmett: `getSQLiteEventStore({ fileName })` (sqlite3 addon, SQLite 3.44), WAL, synchronous=FULL (SQLite default, checked); opens and closes a connection per call',
    'Emmett: most of its batch-1 append cost is that connection per call; its lower-level exported `appendToStream(connection, …)` on one shared connection lands close to eventfold, but this table measures the event store API its docs use',
    'Emmett: appends via `appendToStream(stream, events, { expectedStreamVersion })`',
    'Emmett: loads via `aggregateStream(stream, { evolve, initialState })`; it has no snapshots, so both load rows are the same full fold',
    'Emmett: catch-up via `consumer({ pulling: { batchSize: 100, pullingFrequencyInMs: 0 } })` + `processor({ startFrom: "BEGINNING", eachMessage, stopAfter })`; its puller always sleeps 100 ms after the first batch, then 0 ms between full batches (its default is 50 ms); it tries to store a checkpoint per message',
    'Emmett: in 0.38.5 the processor checkpoint stops advancing after the first batch (each batch starts with an INSERT that hits the primary key, and the mismatch is ignored), so its checkpoint queries run but mostly change nothing',
  ];

  return {
    name: 'Emmett',
    snapshots: false,
    get notes() {
      return [...notes, `Emmett: ${busyRetries} append(s) failed with SQLITE_BUSY and were retried in this round (see the append code)`];
    },
    async open(dir) {
      // Emmett logs every failed transaction with console.log; keep stdout for the table/JSON.
      console.log = (...args: unknown[]) => console.error(...args);
      store = getSQLiteEventStore({ fileName: join(dir, 'emmett.db') });
      await store.readStream('account-open'); // creates the schema
    },
    async append(streamId, events, expectedVersion) {
      // Emmett 0.38.5 now and then fails a single-event append with "SQLITE_BUSY: cannot commit
      // transaction - SQL statements in progress" (no other writer exists: a statement of its
      // own connection is still open when it commits). The transaction is rolled back and the
      // connection closed, so retrying is safe; the retry's time counts in the figures.
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await open().appendToStream<Deposited>(
            streamId,
            events.map((data) => ({ type: 'Deposited', data })),
            { expectedStreamVersion: BigInt(expectedVersion) },
          );
          return Number(result.nextExpectedStreamVersion);
        } catch (error) {
          if (!isBusy(error) || attempt >= MAX_BUSY_RETRIES) throw error;
          busyRetries++;
        }
      }
    },
    async load(streamId) {
      const result = await open().aggregateStream<BenchState, Deposited>(streamId, {
        initialState: initialBenchState,
        evolve: (state: BenchState, event: Deposited) => evolveBench(state, event.data),
      });
      return { version: Number(result.currentStreamVersion), state: result.state, eventsFolded: result.state.count };
    },
    async catchUp(group, total): Promise<CatchUp> {
      let handled = 0;
      const consumer = open().consumer<Deposited>({ pulling: { batchSize: 100, pullingFrequencyInMs: 0 } });
      consumer.processor<Deposited>({
        processorId: group,
        startFrom: 'BEGINNING',
        eachMessage: () => void handled++,
        stopAfter: () => handled >= total,
      });
      await consumer.start(); // resolves when the processor stopped (stopAfter)
      if (handled !== total) throw new Error(`Emmett catch-up handled ${handled} events, expected ${total}`);
      return { handled, stop: () => consumer.close() };
    },
    async close() {
      store = undefined; // the store holds no connection between calls
      console.log = consoleLog;
    },
  };
}
