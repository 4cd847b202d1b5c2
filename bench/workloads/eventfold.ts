// eventfold as a bench target, on any driver: the SQLite and Redis targets differ only in the
// driver they open and the notes they print.
import { z } from 'zod';
import {
  createEventStore,
  defineAggregate,
  defineEvent,
  everyNEvents,
  type AggregateRepository,
  type EventOf,
  type EventStore,
  type EventStoreDriver,
} from '../../src/index.ts';
import { evolveBench, initialBenchState, type BenchState, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';

const Deposited = defineEvent({
  type: 'Deposited',
  schema: z.object({ amount: z.number(), note: z.string() }),
});
const events = [Deposited] as const;
type DepositedEvent = EventOf<typeof events>;

const CATEGORY = 'account';

const plain = defineAggregate({
  name: CATEGORY,
  events,
  initialState: initialBenchState,
  evolve: (state: BenchState, event: DepositedEvent) => evolveBench(state, event.data),
  decide: (_command: never) => [],
});
// Same stream, same fold; a snapshot is written once 1000 events were folded since the last.
const snapshotted = { ...plain, snapshot: { policy: everyNEvents(1000) } };

type Repository = AggregateRepository<BenchState, DepositedEvent, never>;

export interface EventfoldTargetOptions {
  /** The driver for the store kept in `dir` (a file in it, or server keys named after it). */
  readonly driver: (dir: string) => EventStoreDriver;
  readonly notes: readonly string[];
  readonly cleanup?: (dir: string) => Promise<void>;
}

export function eventfoldTarget(options: EventfoldTargetOptions): BenchTarget {
  let store: EventStore<DepositedEvent> | undefined;
  let repos: { plain: Repository; snapshotted: Repository } | undefined;
  const open = (): { store: EventStore<DepositedEvent>; repos: { plain: Repository; snapshotted: Repository } } => {
    if (!store || !repos) throw new Error('eventfold target is not open');
    return { store, repos };
  };
  const idOf = (streamId: string): string => {
    if (!streamId.startsWith(`${CATEGORY}-`)) throw new Error(`bench streams are named ${CATEGORY}-<id>, got ${streamId}`);
    return streamId.slice(CATEGORY.length + 1);
  };

  return {
    name: 'eventfold',
    snapshots: true,
    notes: [
      ...options.notes,
      'eventfold: appends via `store.append(stream, events, { expectedVersion })` (events built by their zod-validated constructor)',
      'eventfold: loads via `store.aggregate(def).load(id)`; the snapshot row uses `snapshot: { policy: everyNEvents(1000) }`',
      'eventfold: catch-up via `store.subscribe({ group, batchSize: 100 })` until `caughtUp()` (position saved at most once a second, `checkpointIntervalMs` default, and once more on catching up)',
    ],
    ...(options.cleanup ? { cleanup: options.cleanup } : {}),
    async open(dir) {
      const opened = createEventStore({ driver: options.driver(dir), events });
      store = opened;
      repos = { plain: opened.aggregate(plain), snapshotted: opened.aggregate(snapshotted) };
      await opened.streamVersion(`${CATEGORY}-open`); // opens the database / connects
    },
    async append(streamId, data, expectedVersion) {
      const outcome = await open().store.append(
        streamId,
        data.map((d) => Deposited(d)),
        { expectedVersion },
      );
      return outcome.nextExpectedVersion;
    },
    async load(streamId, loadOptions): Promise<LoadResult> {
      const { repos: r } = open();
      const loaded = await (loadOptions.snapshot ? r.snapshotted : r.plain).load(idOf(streamId));
      return { version: loaded.version, state: loaded.state, snapshotVersion: loaded.snapshotVersion, eventsFolded: loaded.eventsFolded };
    },
    async catchUp(group, total): Promise<CatchUp> {
      let handled = 0;
      const subscription = open().store.subscribe({ group, batchSize: 100, handler: () => void handled++ });
      await subscription.caughtUp();
      if (handled !== total) throw new Error(`eventfold catch-up handled ${handled} events, expected ${total}`);
      return { handled, stop: () => subscription.stop() };
    },
    async close() {
      await store?.close();
      store = undefined;
      repos = undefined;
    },
  };
}
