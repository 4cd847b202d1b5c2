/**
 * The conformance suite: every semantic rule of eventfold, written once against the driver
 * interface and run unchanged on every backend (SQLite, Redis, Kafka, Pulsar, PostgreSQL) and on
 * a user's own driver. A backend is done when this suite is green on it against the real server.
 * It registers its tests with the runner it is given (node:test, vitest, jest). One file on
 * purpose: it is one list of rules sharing one set of fixtures and helpers, read top to bottom.
 */
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import {
  createEventStore,
  DuplicateEventIdError,
  EventDecodeError,
  EventTooLargeError,
  ExpectedVersionConflictError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidStreamNameError,
  StoreClosedError,
  UnknownEventTypeError,
  type EventStore,
  type EventOf,
  type EventStoreDriver,
  type PositionStore,
  type RecordedEvent,
} from '../../index.ts';
import { storeContext } from '../../core/store-context.ts';
import { accountAggregate, accountEvents, Audited, Deposited, RenamedV1, RenamedV2, Withdrawn } from './fixtures.ts';
import { payloadTests } from './payloads.ts';
import type { OpenStore } from './open-store.ts';
import { supportsAppendMany } from '../../core/stream-access.ts';
import { afterSuite, type TestRunner } from '../runner.ts';

export interface ConformanceTarget {
  /** Shown in the test names, e.g. `sqlite (file)`. */
  readonly name: string;
  /**
   * Opens a driver on the store called `storeName` (a fresh name per test, made of letters,
   * digits and `-`). The same name again must open the same data: that is a reopen.
   */
  driver(storeName: string): EventStoreDriver | Promise<EventStoreDriver>;
  /** Runs once after the suite (the runner's `after`/`afterAll`, when it was given one). */
  cleanup?(): Promise<void>;
  /** Backend-only tests, registered inside the suite's `describe`. */
  additionalTests?(open: OpenStore): void;
}

export interface ConformanceOptions {
  /**
   * Run the protobuf test (binary payloads stored byte for byte). It needs the optional peer
   * dependency `@bufbuild/protobuf`; without it, pass `false`. Default true.
   */
  readonly protobuf?: boolean;
}

/** The store's driver and its lifecycle, for tests that look under the public API (raw records). */
const runtimeOf = (store: { readonly backend: string; readonly partitions: number }) => storeContext(store).runtime;

let runId = 0;

/** Loaded when the protobuf test runs: `@bufbuild/protobuf` is an optional peer dependency. */
async function loadProtobuf() {
  try {
    const [{ fromBinary }, { protobufCodec }, { BlobMessage, BlobSchema }] = await Promise.all([
      import('@bufbuild/protobuf'),
      import('../../codecs/protobuf.ts'),
      import('./proto.ts'),
    ]);
    return { fromBinary, protobufCodec, BlobMessage, BlobSchema };
  } catch (error) {
    throw new Error('the protobuf conformance test needs @bufbuild/protobuf installed; pass { protobuf: false } to leave it out', {
      cause: error,
    });
  }
}

/**
 * Registers the conformance suite with a test runner: `runConformance({ describe, it, after },
 * (name) => myDriver(name))`. Each test opens stores through `target` and closes them at its end.
 */
export function runConformance(
  runner: TestRunner,
  target: ConformanceTarget | ConformanceTarget['driver'],
  options: ConformanceOptions = {},
): void {
  const subject: ConformanceTarget = typeof target === 'function' ? { name: 'driver', driver: target } : target;
  const { describe } = runner;
  describe(`conformance: ${subject.name}`, () => {
    const opened: EventStore<never>[] = [];
    const prefix = `c${process.pid}t${Date.now().toString(36)}r${runId++}`;
    let counter = 0;
    /** A store name no other test uses. */
    const fresh = (label: string): string => `${prefix}-${label}-${counter++}`;

    const open: OpenStore = async (storeName, openOptions = {}) => {
      const store = createEventStore({
        driver: await subject.driver(storeName),
        events: openOptions.events ?? (accountEvents as never),
        ...(openOptions.codec ? { codec: openOptions.codec } : {}),
        ...(openOptions.clock ? { clock: openOptions.clock } : {}),
        ...(openOptions.maxEventBytes ? { maxEventBytes: openOptions.maxEventBytes } : {}),
        onBackgroundError: (error) => {
          throw error;
        },
      });
      opened.push(store as unknown as EventStore<never>);
      return store as never;
    };

    /** `it`, closing the stores the test opened when it ends (no `afterEach` needed from the runner). */
    const it = (name: string, fn: () => Promise<void>): void => {
      runner.it(name, async () => {
        try {
          await fn();
        } finally {
          await Promise.all(opened.splice(0).map((s) => s.close()));
        }
      });
    };
    afterSuite(runner, async () => {
      await subject.cleanup?.();
    });

    const collect = async <T>(iterable: AsyncIterable<T>): Promise<T[]> => {
      const out: T[] = [];
      for await (const item of iterable) out.push(item);
      return out;
    };

    describe('append and read', () => {
      it('round-trips type, data, metadata, id, version, position and time', async () => {
        const store = await open(fresh('roundtrip'));
        const before = Date.now();
        const first = Deposited({ amount: 10, note: 'salary' }, { metadata: { correlationId: 'c-1', tenant: 'acme' } });
        const second = Withdrawn({ amount: 3 }, { metadata: { causationId: first.id } });
        const outcome = await store.append('account-1', [first, second], { expectedVersion: 'no_stream' });
        assert.equal(outcome.nextExpectedVersion, 2);
        assert.equal(outcome.alreadyStored, false);

        const read = await collect(store.readStream('account-1'));
        assert.equal(read.length, 2);
        const [a, b] = read as [RecordedEvent<(typeof read)[number]>, RecordedEvent<(typeof read)[number]>];
        assert.equal(a.type, 'Deposited');
        assert.deepEqual(a.data, { amount: 10, note: 'salary' });
        assert.deepEqual(a.metadata, { correlationId: 'c-1', tenant: 'acme' });
        assert.equal(a.id, first.id);
        assert.equal(a.version, 1);
        assert.equal(a.streamId, 'account-1');
        assert.equal(a.storedSchemaVersion, 1);
        assert.ok(a.time.getTime() >= before - 5 && a.time.getTime() <= Date.now() + 5);
        assert.equal(b.version, 2);
        assert.deepEqual(b.metadata, { causationId: first.id });
        assert.equal(b.position.partition, a.position.partition);
        assert.ok(b.position.offset > a.position.offset, 'offsets grow within a partition');
        assert.deepEqual(
          outcome.events.map((e) => e.position),
          read.map((e) => e.position),
        );
        assert.ok(Object.isFrozen(a) && Object.isFrozen(a.data), 'recorded events are frozen');
        assert.throws(() => {
          (a.data as { amount: number }).amount = 99;
        }, TypeError);
        assert.equal(await store.streamVersion('account-1'), 2);
        assert.equal(await store.streamVersion('account-never'), 0);
      });

      it('reads version ranges and pages through long streams', async () => {
        const store = await open(fresh('ranges'));
        for (let i = 0; i < 5; i++) {
          await store.append(
            'account-r',
            Array.from({ length: 5 }, (_, j) => Deposited({ amount: i * 5 + j + 1 })),
          );
        }
        const all = await collect(store.readStream('account-r', { batchSize: 7 }));
        assert.deepEqual(
          all.map((e) => e.version),
          Array.from({ length: 25 }, (_, i) => i + 1),
        );
        assert.deepEqual(
          all.map((e) => e.data.amount),
          Array.from({ length: 25 }, (_, i) => i + 1),
        );
        const middle = await collect(store.readStream('account-r', { fromVersion: 10, toVersion: 14, batchSize: 2 }));
        assert.deepEqual(
          middle.map((e) => e.version),
          [10, 11, 12, 13, 14],
        );
        assert.deepEqual(await collect(store.readStream('account-r', { fromVersion: 26 })), []);
        assert.deepEqual(await collect(store.readStream('account-none')), []);
      });

      it('keeps per-stream order when streams interleave, and readAll keeps partition order', async () => {
        const store = await open(fresh('order'));
        const streams = ['account-a', 'account-b', 'account-c'];
        for (let round = 1; round <= 10; round++) {
          await Promise.all(streams.map((s) => store.append(s, Deposited({ amount: round }))));
        }
        for (const s of streams) {
          const events = await collect(store.readStream(s));
          assert.deepEqual(
            events.map((e) => e.data.amount),
            Array.from({ length: 10 }, (_, i) => i + 1),
          );
        }
        const all = await collect(store.readAll({ batchSize: 4 }));
        assert.equal(all.length, 30);
        const lastOffset = new Map<number, bigint>();
        const lastVersion = new Map<string, number>();
        for (const e of all) {
          const prev = lastOffset.get(e.position.partition);
          assert.ok(prev === undefined || e.position.offset > prev, 'offsets increase within a partition');
          lastOffset.set(e.position.partition, e.position.offset);
          assert.equal(e.version, (lastVersion.get(e.streamId) ?? 0) + 1, 'a stream is read in version order');
          lastVersion.set(e.streamId, e.version);
        }
        const resumed = await collect(store.readAll({ after: [all[14]!.position] }));
        assert.ok(
          resumed.every((e) => e.position.partition !== all[14]!.position.partition || e.position.offset > all[14]!.position.offset),
        );
      });

      it('upcasts events stored with an older schema version', async () => {
        const name = fresh('upcast');
        const v1 = await open(name, { events: [RenamedV1] });
        await v1.append('person-1', RenamedV1({ name: 'Ada Lovelace' }));
        await v1.close();
        const v2 = await open(name, { events: [RenamedV2] });
        const [event] = await collect(v2.readStream('person-1'));
        assert.deepEqual(event?.data, { firstName: 'Ada', lastName: 'Lovelace' });
        assert.equal(event?.storedSchemaVersion, 1);
        await v2.append('person-1', RenamedV2({ firstName: 'Grace', lastName: 'Hopper' }));
        // The older reader refuses the newer event with a typed error naming it.
        const v1again = await open(name, { events: [RenamedV1] });
        await assert.rejects(collect(v1again.readStream('person-1')), (error: unknown) => {
          assert.ok(error instanceof EventDecodeError);
          assert.equal(error.streamId, 'person-1');
          assert.equal(error.version, 2);
          assert.equal(error.eventType, 'Renamed');
          return true;
        });
      });

      if (options.protobuf !== false)
        it('stores protobuf payloads byte for byte', async () => {
          const { BlobMessage, BlobSchema, fromBinary, protobufCodec } = await loadProtobuf();
          const name = fresh('protobuf');
          const store = await open(name, { events: [BlobMessage], codec: protobufCodec({ messages: { Blob: BlobSchema } }) });
          const bytes = new Uint8Array(256).map((_, i) => i);
          const payload = { label: 'all bytes', sizeBytes: '18446744073709551615', raw: Buffer.from(bytes).toString('base64') };
          await store.append('blob-1', BlobMessage(payload));
          const [event] = await collect(store.readStream('blob-1'));
          assert.deepEqual(event?.data, payload);
          // The stored bytes really are protobuf, not JSON.
          const partition = store.partitionOf('blob-1');
          const [raw] = (await runtimeOf(store).use((d) => d.readPartition(partition, { after: undefined, limit: 1000 }))).filter(
            (e) => e.streamId === 'blob-1',
          );
          assert.equal(raw?.codec, 'protobuf');
          const message = fromBinary(BlobSchema, raw!.data) as unknown as { label: string; sizeBytes: bigint; raw: Uint8Array };
          assert.equal(message.label, 'all bytes');
          assert.equal(message.sizeBytes, 18446744073709551615n);
          assert.deepEqual(message.raw, bytes);
          // A JSON store reading it gets a typed decode error naming the event.
          const jsonReader = await open(name, { events: [BlobMessage] });
          await assert.rejects(collect(jsonReader.readStream('blob-1')), (error: unknown) => {
            assert.ok(error instanceof EventDecodeError);
            assert.match(error.message, /blob-1/);
            assert.match(error.message, /protobuf/);
            return true;
          });
        });
    });

    describe('optimistic concurrency', () => {
      it('honours no_stream, stream_exists, exact versions and any', async () => {
        const store = await open(fresh('expected'));
        await assert.rejects(
          store.append('account-x', Deposited({ amount: 1 }), { expectedVersion: 'stream_exists' }),
          ExpectedVersionConflictError,
        );
        await store.append('account-x', Deposited({ amount: 1 }), { expectedVersion: 'no_stream' });
        await assert.rejects(store.append('account-x', Deposited({ amount: 1 }), { expectedVersion: 'no_stream' }), (error: unknown) => {
          assert.ok(error instanceof ExpectedVersionConflictError);
          assert.equal(error.actualVersion, 1);
          assert.equal(error.streamId, 'account-x');
          assert.equal(error.code, 'VERSION_CONFLICT');
          return true;
        });
        await store.append('account-x', Deposited({ amount: 2 }), { expectedVersion: 'stream_exists' });
        await assert.rejects(store.append('account-x', Deposited({ amount: 3 }), { expectedVersion: 5 }), ExpectedVersionConflictError);
        await store.append('account-x', Deposited({ amount: 3 }), { expectedVersion: 2 });
        await store.append('account-x', Deposited({ amount: 4 }), { expectedVersion: 'any' });
        const events = await collect(store.readStream('account-x'));
        assert.deepEqual(
          events.map((e) => e.data.amount),
          [1, 2, 3, 4],
        );
        await assert.rejects(store.append('account-x', Deposited({ amount: 5 }), { expectedVersion: -1 }), InvalidArgumentError);
      });

      it('of 50 concurrent appends with the same expected version exactly one wins', async () => {
        const name = fresh('race');
        const stores = await Promise.all(Array.from({ length: 5 }, () => open(name)));
        await stores[0]!.append('account-race', Deposited({ amount: 1 }));
        const attempts = Array.from({ length: 50 }, (_, i) =>
          stores[i % stores.length]!.append('account-race', Deposited({ amount: 100 + i }), { expectedVersion: 1 }),
        );
        const results = await Promise.allSettled(attempts);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(won.length, 1, 'exactly one append wins');
        assert.equal(lost.length, 49);
        for (const r of lost) {
          assert.ok(r.reason instanceof ExpectedVersionConflictError, `loser got ${String(r.reason)}`);
          assert.equal(r.reason.actualVersion, 2);
        }
        const events = await collect(stores[0]!.readStream('account-race'));
        assert.equal(events.length, 2, 'losers stored nothing');
        assert.deepEqual(
          events.map((e) => e.version),
          [1, 2],
        );
      });

      it('stores a retried append (same event ids) once', async () => {
        const store = await open(fresh('idempotent'));
        const batch = [Deposited({ amount: 1 }), Deposited({ amount: 2 })];
        const first = await store.append('account-i', batch, { expectedVersion: 0 });
        const retry = await store.append('account-i', batch, { expectedVersion: 0 });
        assert.equal(retry.alreadyStored, true);
        assert.equal(retry.nextExpectedVersion, 2);
        assert.deepEqual(
          retry.events.map((e) => e.position),
          first.events.map((e) => e.position),
        );
        const anyRetry = await store.append('account-i', batch, { expectedVersion: 'any' });
        assert.equal(anyRetry.alreadyStored, true);
        const single = await store.append('account-i', batch[1]!, { expectedVersion: 'any' });
        assert.equal(single.alreadyStored, true);
        assert.equal(single.nextExpectedVersion, 2);
        assert.equal((await collect(store.readStream('account-i'))).length, 2);

        // Not a retry: one known id mixed with a new one, or a known id in another stream of
        // the same partition (ids are unique per partition).
        await assert.rejects(store.append('account-i', [batch[0]!, Deposited({ amount: 3 })]), DuplicateEventIdError);
        let other = 'account-other';
        for (let k = 0; store.partitionOf(other) !== store.partitionOf('account-i'); k++) other = `account-other${k}`;
        await assert.rejects(store.append(other, batch[0]!), (error: unknown) => {
          assert.ok(error instanceof DuplicateEventIdError);
          assert.deepEqual(error.existing, { streamId: 'account-i', version: 1 });
          return true;
        });
        await assert.rejects(store.append('account-i', [batch[0]!, batch[0]!]), InvalidArgumentError);
        assert.equal((await collect(store.readStream('account-i'))).length, 2);
        assert.equal((await collect(store.readStream(other))).length, 0);
      });

      it('appendMany is all or nothing where the backend supports it', async () => {
        const store = await open(fresh('many'));
        if (!supportsAppendMany(runtimeOf(store).driver)) {
          await assert.rejects(store.appendMany([{ streamId: 'account-m1', events: Deposited({ amount: 1 }) }]), InvalidArgumentError);
          return; // the backend has no multi-stream append: checked that it refuses
        }
        // Two streams of one partition: every backend with the capability takes them (a Redis
        // Cluster only takes streams whose keys share a slot); across partitions see each backend's tests.
        let m2 = 'account-m2';
        for (let k = 0; store.partitionOf(m2) !== store.partitionOf('account-m1'); k++) m2 = `account-m2x${k}`;
        await store.append(m2, Deposited({ amount: 1 }));
        await assert.rejects(
          store.appendMany([
            { streamId: 'account-m1', events: Deposited({ amount: 5 }), expectedVersion: 'no_stream' },
            { streamId: m2, events: Withdrawn({ amount: 1 }), expectedVersion: 'no_stream' },
          ]),
          ExpectedVersionConflictError,
        );
        assert.equal(await store.streamVersion('account-m1'), 0, 'the first stream of a failed batch got nothing');
        const ok = await store.appendMany([
          { streamId: 'account-m1', events: Deposited({ amount: 5 }), expectedVersion: 'no_stream' },
          { streamId: m2, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
        ]);
        assert.deepEqual(
          ok.map((o) => o.nextExpectedVersion),
          [1, 2],
        );
        assert.deepEqual(
          (await collect(store.readAll())).map((e) => [e.streamId, e.version]),
          [
            [m2, 1],
            ['account-m1', 1],
            [m2, 2],
          ],
          'the log holds the batch once, in order',
        );
      });

      it('appendMany recognises an exact retry of a stored batch, on every backend that has it', async () => {
        const store = await open(fresh('many-retry'));
        if (!supportsAppendMany(runtimeOf(store).driver)) return; // the test above checked that it refuses
        let r2 = 'account-r2';
        for (let k = 0; store.partitionOf(r2) !== store.partitionOf('account-r1'); k++) r2 = `account-r2x${k}`;
        await store.append(r2, Deposited({ amount: 1 }));
        const batch = [
          { streamId: 'account-r1', events: [Deposited({ amount: 5 }), Withdrawn({ amount: 1 })], expectedVersion: 'no_stream' as const },
          { streamId: r2, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
        ];
        const first = await store.appendMany(batch);
        const again = await store.appendMany(batch);
        assert.deepEqual(
          again.map((o) => o.alreadyStored),
          [true, true],
        );
        assert.deepEqual(
          again.map((o) => o.nextExpectedVersion),
          first.map((o) => o.nextExpectedVersion),
        );
        assert.deepEqual(
          again.map((o) => o.events.map((e) => [e.id, e.version])),
          first.map((o) => o.events.map((e) => [e.id, e.version])),
        );
        assert.equal((await collect(store.readAll())).length, 4, 'nothing stored twice');
        // Not a retry: one stream's events are new, so the conflict stands and nothing is stored.
        await assert.rejects(
          store.appendMany([batch[0]!, { streamId: r2, events: Withdrawn({ amount: 2 }), expectedVersion: 1 }]),
          ExpectedVersionConflictError,
        );
        assert.equal((await collect(store.readAll())).length, 4);
      });
    });

    describe('aggregates and snapshots', () => {
      it('handles commands, shares concurrent loads and retries on conflict', async () => {
        const store = await open(fresh('aggregate'));
        const accounts = store.aggregate(accountAggregate());
        await accounts.handle('7', { kind: 'deposit', amount: 50 });
        const result = await accounts.handle('7', { kind: 'withdraw', amount: 20 });
        assert.deepEqual(result.state, { balance: 30, operations: 2 });
        assert.equal(result.version, 2);
        const [l1, l2] = [accounts.load('7'), accounts.load('7')];
        assert.equal(l1, l2, 'concurrent loads of one aggregate share one rebuild');
        assert.deepEqual((await l1).state, { balance: 30, operations: 2 });

        // Two writers decide on the same version; the loser retries on the fresh state.
        const other = store.aggregate(accountAggregate());
        const outcomes = await Promise.allSettled([
          accounts.handle('7', { kind: 'deposit', amount: 1 }),
          other.handle('7', { kind: 'deposit', amount: 2 }, { retries: 3 }),
        ]);
        assert.ok(
          outcomes.every((o) => o.status === 'fulfilled'),
          'the retrying writer succeeds',
        );
        assert.deepEqual((await accounts.load('7')).state, { balance: 33, operations: 4 });
        await assert.rejects(accounts.handle('7', { kind: 'deposit', amount: 1 }, { expectedVersion: 1 }), ExpectedVersionConflictError);
      });

      it('writes snapshots by policy with the position they cover and loads snapshot + tail', async () => {
        const name = fresh('snapshot');
        const store = await open(name);
        const accounts = store.aggregate(accountAggregate({ every: 3 }));
        for (let i = 1; i <= 7; i++) await accounts.handle('s', { kind: 'deposit', amount: i });
        const snapshot = await runtimeOf(store).use((d) => d.readSnapshot('account-s', 'account'));
        assert.ok(snapshot, 'a snapshot was written');
        assert.equal(snapshot.version, 6);
        const events = await collect(store.readStream('account-s'));
        assert.deepEqual(snapshot.position, events[5]!.position, 'the snapshot records the position it covers');

        const reopened = await open(name);
        const loaded = await reopened.aggregate(accountAggregate({ every: 3 })).load('s');
        assert.equal(loaded.snapshotVersion, 6);
        assert.equal(loaded.eventsFolded, 1);
        assert.deepEqual(loaded.state, { balance: 28, operations: 7 });
        assert.equal(loaded.version, 7);
      });

      it('ignores a snapshot of another schema version and rebuilds from events', async () => {
        const name = fresh('stale');
        const store = await open(name);
        const v1 = store.aggregate(accountAggregate({ every: 2 }));
        for (let i = 1; i <= 4; i++) await v1.handle('z', { kind: 'deposit', amount: 10 });
        assert.equal((await runtimeOf(store).use((d) => d.readSnapshot('account-z', 'account')))?.schemaVersion, 1);
        // A v2 snapshot that lies about the state must not be trusted by a v1 reader either.
        const v2 = store.aggregate(accountAggregate({ every: 100, schemaVersion: 2 }));
        const loaded = await v2.load('z');
        assert.equal(loaded.snapshotVersion, undefined, 'stale snapshot ignored');
        assert.equal(loaded.eventsFolded, 4);
        assert.deepEqual(loaded.state, { balance: 40, operations: 4 });
      });

      it('time-travels to a version and to a point in time', async () => {
        const base = Date.now() - 10_000;
        let now = base;
        const store = await open(fresh('travel'), { clock: () => now });
        const accounts = store.aggregate(accountAggregate({ every: 2 }));
        for (let i = 1; i <= 5; i++) {
          now = base + i * 1000;
          await accounts.handle('t', { kind: 'deposit', amount: i });
        }
        assert.deepEqual((await accounts.loadAt('t', { version: 3 })).state, { balance: 6, operations: 3 });
        assert.deepEqual((await accounts.loadAt('t', { version: 0 })).state, { balance: 0, operations: 0 });
        const atTime = await accounts.loadAt('t', { time: new Date(base + 2500) });
        assert.deepEqual(atTime.state, { balance: 3, operations: 2 });
        assert.equal(atTime.version, 2);
        const since = await collect(store.readSince(new Date(base + 4000)));
        assert.deepEqual(
          since.map((e) => e.version),
          [4, 5],
        );
        assert.deepEqual(await collect(store.readSince(new Date(base + 60_000))), []);
      });
    });

    describe('consumer groups', () => {
      it('keeps independent positions per group and resumes after the store is reopened', async () => {
        const name = fresh('groups');
        const store = await open(name);
        for (let i = 1; i <= 5; i++) await store.append(`account-g${i % 2}`, Deposited({ amount: i }));

        const seenA: number[] = [];
        const a = store.subscribe({ group: 'projector-a', handler: (e) => void seenA.push(e.data.amount), batchSize: 2 });
        await a.caughtUp();
        assert.deepEqual(
          seenA.sort((x, y) => x - y),
          [1, 2, 3, 4, 5],
        );
        const seenB: number[] = [];
        const b = store.subscribe({ group: 'projector-b', start: 'end', handler: (e) => void seenB.push(e.data.amount) });
        await b.caughtUp();
        assert.deepEqual(seenB, [], 'a group started at the end sees nothing old');
        await store.append('account-g9', Deposited({ amount: 6 }));
        await a.caughtUp();
        await b.caughtUp();
        assert.deepEqual(seenB, [6]);
        await a.stop();
        await b.stop();
        await store.append('account-g9', Deposited({ amount: 7 }));
        await store.close();

        const reopened = await open(name);
        const again: number[] = [];
        const a2 = reopened.subscribe({ group: 'projector-a', handler: (e) => void again.push(e.data.amount) });
        await a2.caughtUp();
        assert.deepEqual(again, [7], 'group A resumes after its saved position, no duplicates');
        await a2.stop();

        await reopened.subscriptions.reset('projector-b');
        const replay: number[] = [];
        const b2 = reopened.subscribe({ group: 'projector-b', handler: (e) => void replay.push(e.data.amount) });
        await b2.caughtUp();
        assert.deepEqual(
          replay.sort((x, y) => x - y),
          [1, 2, 3, 4, 5, 6, 7],
          'a reset group replays from the start',
        );
        await b2.stop();

        // Seek group A back to just after the third event of the log.
        const log = await collect(reopened.readAll());
        await reopened.subscriptions.seek('projector-a', [log[2]!.position]);
        assert.deepEqual(await reopened.subscriptions.position('projector-a'), [log[2]!.position]);
        const afterSeek: string[] = [];
        const a3 = reopened.subscribe({ group: 'projector-a', handler: (e) => void afterSeek.push(e.id) });
        await a3.caughtUp();
        assert.deepEqual(
          afterSeek,
          log
            .filter((e) => e.position.partition !== log[2]!.position.partition || e.position.offset > log[2]!.position.offset)
            .map((e) => e.id),
        );
        await a3.stop();
      });

      it("keeps a group's position in the read model's own database when asked, written with the rows", async () => {
        const name = fresh('readmodel');
        const store = await open(name);
        for (let i = 1; i <= 4; i++) await store.append(`account-rm${i % 2}`, Deposited({ amount: i }));
        const db = new DatabaseSync(':memory:');
        db.exec(
          'CREATE TABLE totals (stream TEXT PRIMARY KEY, total INTEGER); CREATE TABLE positions (grp TEXT, part INTEGER, off TEXT, PRIMARY KEY (grp, part))',
        );
        const positions: PositionStore = {
          load: async (group) => {
            const rows = db.prepare('SELECT part, off FROM positions WHERE grp = ?').all(group) as { part: number; off: string }[];
            return rows.length ? rows.map((r) => ({ partition: r.part, offset: BigInt(r.off) })) : undefined;
          },
          save: async () => undefined, // the handler already wrote it, in the row's transaction
        };
        const project = (e: RecordedEvent<EventOf<typeof accountEvents>>): void => {
          db.exec('BEGIN');
          db.prepare('INSERT INTO totals VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET total = total + excluded.total').run(
            e.streamId,
            e.data.amount,
          );
          db.prepare('INSERT OR REPLACE INTO positions VALUES (?, ?, ?)').run('totals', e.position.partition, String(e.position.offset));
          db.exec('COMMIT');
        };
        const first = store.subscribe({ group: 'totals', positions, handler: project });
        await first.caughtUp();
        await first.stop();
        await store.append('account-rm1', Deposited({ amount: 10 }));
        const second = store.subscribe({ group: 'totals', positions, handler: project });
        await second.caughtUp();
        await second.stop();
        const totals = Object.fromEntries(
          (db.prepare('SELECT stream, total FROM totals').all() as { stream: string; total: number }[]).map((r) => [r.stream, r.total]),
        );
        assert.deepEqual(totals, { 'account-rm0': 2 + 4, 'account-rm1': 1 + 3 + 10 }, 'every event applied exactly once');
        assert.deepEqual(await store.subscriptions.position('totals'), [], 'nothing was kept in the event store');
        db.close();
      });

      it('stops a subscription whose handler keeps failing, at the failing event, and resumes there', async () => {
        const name = fresh('failing');
        const store = await open(name);
        for (let i = 1; i <= 3; i++) await store.append('account-f', Deposited({ amount: i }));
        const seen: number[] = [];
        const sub = store.subscribe({
          group: 'fragile',
          retries: 2,
          retryDelayMs: 1,
          batchSize: 10,
          handler: (e) => {
            if (e.data.amount === 2) throw new Error('projection down');
            seen.push(e.data.amount);
          },
        });
        await assert.rejects(sub.done, /projection down/);
        assert.deepEqual(seen, [1]);
        const resumed: number[] = [];
        const sub2 = store.subscribe({ group: 'fragile', handler: (e) => void resumed.push(e.data.amount) });
        await sub2.caughtUp();
        assert.deepEqual(resumed, [2, 3], 'the failed event is delivered again, nothing is skipped');
        await sub2.stop();
      });
    });

    describe('bad input', () => {
      const hostile = [
        '',
        'a/b',
        'a:b',
        '{p1}',
        'a*',
        'a?',
        '..',
        'a..b',
        '../etc/passwd',
        'naïve',
        'ορδερ-1',
        'a b',
        'a\nb',
        'a\u0000b',
        '-leading',
        '.hidden',
        'x'.repeat(201),
        '__proto__',
        'persistent://public/default/x',
      ];

      it('rejects every kind of bad input with a typed error and changes nothing stored', async () => {
        const name = fresh('bad');
        const store = await open(name, { maxEventBytes: 64 * 1024 });
        const good = [Deposited({ amount: 1 }), Withdrawn({ amount: 1 })];
        await store.append('account-safe', good);
        const snapshotBefore = await collect(store.readAll());

        // Unknown type: not registered with this store.
        await assert.rejects(store.append('account-safe', Audited({ by: 'x' }) as never), UnknownEventTypeError);
        await assert.rejects(store.append('account-safe', { type: 'Nope', data: {} } as never), UnknownEventTypeError);
        // Malformed payloads, through the constructor and as plain objects.
        assert.throws(() => Deposited({ amount: -5 }), InvalidEventError);
        assert.throws(() => Deposited({ amount: 'ten' } as never), InvalidEventError);
        await assert.rejects(store.append('account-safe', { type: 'Deposited', data: { amount: 'ten' } } as never), (error: unknown) => {
          assert.ok(error instanceof InvalidEventError);
          assert.equal(error.eventType, 'Deposited');
          assert.deepEqual(error.issues[0]?.path, ['amount']);
          return true;
        });
        await assert.rejects(store.append('account-safe', null as never), InvalidEventError);
        await assert.rejects(store.append('account-safe', [] as never), InvalidArgumentError);
        // Oversized event.
        await assert.rejects(store.append('account-safe', Deposited({ amount: 1, note: 'x'.repeat(100_000) })), (error: unknown) => {
          assert.ok(error instanceof EventTooLargeError);
          assert.equal(error.limit, 64 * 1024);
          return true;
        });
        // __proto__ keys in the payload or the metadata.
        const polluted = JSON.parse('{"amount": 1, "__proto__": {"admin": true}}') as { amount: number };
        assert.throws(() => Deposited(polluted), InvalidEventError);
        await assert.rejects(store.append('account-safe', { type: 'Deposited', data: polluted } as never), InvalidEventError);
        const badMeta = JSON.parse('{"__proto__": {"admin": "yes"}}') as Record<string, string>;
        assert.throws(() => Deposited({ amount: 1 }, { metadata: badMeta }), InvalidEventError);
        assert.throws(() => Deposited({ amount: 1 }, { metadata: { n: 5 as unknown as string } }), InvalidEventError);
        assert.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was polluted');
        // Hostile stream names never reach the backend.
        for (const streamId of hostile) {
          await assert.rejects(
            store.append(streamId, Deposited({ amount: 1 })),
            InvalidStreamNameError,
            `append to ${JSON.stringify(streamId)}`,
          );
          await assert.rejects(collect(store.readStream(streamId)), InvalidStreamNameError);
          await assert.rejects(store.streamVersion(streamId), InvalidStreamNameError);
        }
        await assert.rejects(store.append(42 as never, Deposited({ amount: 1 })), InvalidStreamNameError);

        // Nothing stored was lost or changed.
        const after = await collect(store.readAll());
        assert.deepEqual(after, snapshotBefore);
        const reopened = await open(name);
        assert.deepEqual(await collect(reopened.readAll()), snapshotBefore);
      });

      it('reports an unknown stored type with a typed error naming stream and version', async () => {
        const name = fresh('unknown-read');
        const wide = await open(name, { events: [Deposited, Withdrawn, Audited] });
        await wide.append('account-u', [Deposited({ amount: 1 }), Audited({ by: 'ops' })]);
        const narrow = await open(name);
        await assert.rejects(collect(narrow.readStream('account-u')), (error: unknown) => {
          assert.ok(error instanceof UnknownEventTypeError);
          assert.equal(error.streamId, 'account-u');
          assert.equal(error.version, 2);
          assert.equal(error.eventType, 'Audited');
          return true;
        });
        // The readable prefix is still served.
        const firsts: number[] = [];
        for await (const e of narrow.readStream('account-u', { toVersion: 1 })) firsts.push(e.version);
        assert.deepEqual(firsts, [1]);
      });

      it('refuses use after close with a typed error', async () => {
        const store = await open(fresh('closed'));
        await store.append('account-c', Deposited({ amount: 1 }));
        await store.close();
        await assert.rejects(store.append('account-c', Deposited({ amount: 1 })), StoreClosedError);
        await assert.rejects(store.streamVersion('account-c'), StoreClosedError);
      });
    });

    payloadTests({ describe, it }, open, fresh, collect);

    subject.additionalTests?.(open);
  });
}
