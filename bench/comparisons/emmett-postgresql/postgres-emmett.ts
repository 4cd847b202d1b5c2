// Emmett's PostgreSQL event store (@event-driven-io/emmett-postgresql 0.42.0), used as its docs
// show: `getPostgreSQLEventStore(connectionString)`. Its SQL names its tables and functions
// unqualified, so each round's schema is put first on the search_path of its connections (the
// connection string's `options=-c search_path=…`); its tables and functions are created there
// on first use and dropped with the schema after the round.
import type { Event } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import { dropSchema, postgresUrl, schemaFor, withClient, withSearchPath } from '../../workloads/postgres-common.ts';
import { evolveBench, initialBenchState, type BenchEventData, type BenchState, type BenchTarget, type CatchUp } from '../../target.ts';

type Deposited = Event<'Deposited', BenchEventData>;

export function emmettPostgres(): BenchTarget {
  let store: PostgresEventStore | undefined;
  const open = (): PostgresEventStore => {
    if (!store) throw new Error('Emmett target is not open');
    return store;
  };

  return {
    name: 'Emmett',
    snapshots: false,
    notes: [
      'Emmett: `getPostgreSQLEventStore(connectionString)` (its dumbo pool over node-postgres), tables emt_streams / emt_messages (partitioned), an append is one call of its `emt_append_to_stream` PL/pgSQL function (INSERT of the stream row, or an UPDATE of it guarded by the expected version, then one INSERT of the messages as jsonb)',
      'Emmett: appends via `appendToStream(stream, events, { expectedStreamVersion })`',
      'Emmett: loads via `aggregateStream(stream, { evolve, initialState })`; it has no snapshots, so both load rows are the same full fold',
      'Emmett: catch-up via `consumer({ pulling: { batchSize: 100, pullingFrequencyInMs: 0 } })` + `reactor({ processorId, startFrom: "BEGINNING", eachMessage, stopAfter })` (it stores the processor checkpoint per batch); stopped with `stop()`, since `close()` of a consumer made by the store ends the store\'s own pool (0.42.0)',
    ],
    async open(dir) {
      const schema = schemaFor(dir, 'emmett');
      await withClient((c) => c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`));
      store = getPostgreSQLEventStore(withSearchPath(postgresUrl(), schema));
      await store.readStream('account-open'); // creates its tables and functions
    },
    async append(streamId, events, expectedVersion) {
      const result = await open().appendToStream<Deposited>(
        streamId,
        events.map((data) => ({ type: 'Deposited', data })),
        { expectedStreamVersion: BigInt(expectedVersion) },
      );
      return Number(result.nextExpectedStreamVersion);
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
      consumer.reactor<Deposited>({
        processorId: group,
        startFrom: 'BEGINNING',
        eachMessage: () => void handled++,
        stopAfter: () => handled >= total,
      });
      await consumer.start(); // resolves when the reactor stopped (stopAfter)
      if (handled !== total) throw new Error(`Emmett catch-up handled ${handled} events, expected ${total}`);
      // Not consumer.close(): a consumer made by the store shares its pool, and close() ends that pool.
      return { handled, stop: () => consumer.stop() };
    },
    async close() {
      await store?.close();
      store = undefined;
    },
    cleanup: async (dir) => void (await dropSchema(dir)),
  };
}
