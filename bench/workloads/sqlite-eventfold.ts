// eventfold's embedded store (node:sqlite), file-backed in WAL mode with its default
// synchronous=FULL: every acknowledged append is fsynced.
import { join } from 'node:path';
import { z } from 'zod';
import {
  defineEvent,
  everyNEvents,
  EventStore,
  type AggregateDefinition,
  type AggregateRepository,
  type AnyEventType,
} from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { evolveBench, initialBenchState, type BenchEventData, type BenchState, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';

const Deposited = defineEvent({
  type: 'Deposited',
  schema: z.object({ amount: z.number(), note: z.string() }),
});
type DepositedEvent = ReturnType<typeof Deposited>;

// `AnyEventType` does not accept a concrete event type under `strict` (see the report in
// examples/orders/events.ts), hence the cast and the explicit event union.
const eventTypes = [Deposited] as unknown as readonly AnyEventType[];

const CATEGORY = 'account';

const plain: AggregateDefinition<BenchState, DepositedEvent, never> = {
  name: CATEGORY,
  events: eventTypes,
  initialState: initialBenchState,
  evolve: (state, event) => evolveBench(state, event.data),
  decide: () => [],
};
// Same stream, same fold; a snapshot is written once 1000 events were folded since the last.
const snapshotted: AggregateDefinition<BenchState, DepositedEvent, never> = { ...plain, snapshot: { policy: everyNEvents(1000) } };

export function eventfoldSqlite(): BenchTarget {
  let store: EventStore<DepositedEvent> | undefined;
  let repos: { plain: AggregateRepository<BenchState, DepositedEvent, never>; snapshotted: AggregateRepository<BenchState, DepositedEvent, never> };
  const open = (): EventStore<DepositedEvent> => {
    if (!store) throw new Error('eventfold target is not open');
    return store;
  };
  const idOf = (streamId: string): string => {
    if (!streamId.startsWith(`${CATEGORY}-`)) throw new Error(`bench streams are named ${CATEGORY}-<id>, got ${streamId}`);
    return streamId.slice(CATEGORY.length + 1);
  };

  return {
    name: 'eventfold',
    snapshots: true,
    notes: [
      'eventfold: `sqlite({ path })` driver (node:sqlite, SQLite 3.53), WAL, synchronous=FULL (default), one connection',
      'eventfold: appends via `store.append(stream, events, { expectedVersion })` (events built by their zod-validated constructor)',
      'eventfold: loads via `store.aggregate(def).load(id)`; the snapshot row uses `snapshot: { policy: everyNEvents(1000) }`',
      'eventfold: catch-up via `store.subscribe({ group, batchSize: 100 })` until `caughtUp()` (checkpoint written per batch)',
    ],
    async open(dir) {
      store = new EventStore<DepositedEvent>({ driver: sqlite({ path: join(dir, 'eventfold.db') }), events: eventTypes });
      repos = { plain: store.aggregate(plain), snapshotted: store.aggregate(snapshotted) };
      await store.streamVersion(`${CATEGORY}-open`); // opens the database
    },
    async append(streamId, events, expectedVersion) {
      const outcome = await open().append(
        streamId,
        events.map((data: BenchEventData) => Deposited(data)),
        { expectedVersion },
      );
      return outcome.nextExpectedVersion;
    },
    async load(streamId, options): Promise<LoadResult> {
      const loaded = await (options.snapshot ? repos.snapshotted : repos.plain).load(idOf(streamId));
      return { version: loaded.version, state: loaded.state, snapshotVersion: loaded.snapshotVersion, eventsFolded: loaded.eventsFolded };
    },
    async catchUp(group, total): Promise<CatchUp> {
      let handled = 0;
      const subscription = open().subscribe({ group, batchSize: 100, handler: () => void handled++ });
      await subscription.caughtUp();
      if (handled !== total) throw new Error(`eventfold catch-up handled ${handled} events, expected ${total}`);
      return { handled, stop: () => subscription.stop() };
    },
    async close() {
      await store?.close();
      store = undefined;
    },
  };
}
