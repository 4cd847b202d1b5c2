// When a subscription saves its position: at most every checkpointIntervalMs while events keep
// coming, and always when it catches up, stops or fails (core rule, shown on the embedded store).
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import {
  createEventStore,
  DriverError,
  InvalidArgumentError,
  type ConditionalAppendDriver,
  type EventStoreDriver,
  type Position,
  type PositionStore,
} from '../../src/index.ts';
import { Deposited, accountEvents } from '../conformance/fixtures.ts';
import { runtimeOf } from '../support/runtime.ts';

function recordingPositions(): PositionStore & { saves: Position[][] } {
  const saves: Position[][] = [];
  return {
    saves,
    load: async () => saves.at(-1),
    save: async (_group, positions) => void saves.push([...positions]),
  };
}

async function storeWith(events: number) {
  const store = createEventStore({ driver: sqlite({ database: new DatabaseSync(':memory:') }), events: accountEvents });
  for (let i = 0; i < events / 50; i++)
    await store.append(
      `account-${i}`,
      Array.from({ length: 50 }, () => Deposited({ amount: 1 })),
    );
  return store;
}

describe('subscription checkpoints', () => {
  it('saves once per interval while catching up, and before caughtUp() resolves', async () => {
    const store = await storeWith(1000);
    const head = await runtimeOf(store).use((d) => d.partitionHead(0));
    const positions = recordingPositions();
    const sub = store.subscribe({ group: 'slow-saves', batchSize: 10, checkpointIntervalMs: 60_000, positions, handler: () => undefined });
    await sub.caughtUp();
    assert.equal(sub.processed, 1000);
    assert.equal(positions.saves.length, 1, 'one save for 100 batches: the one that makes caughtUp() true');
    assert.deepEqual(positions.saves[0], [{ partition: 0, offset: head }]);
    await sub.stop();
    assert.equal(positions.saves.length, 1, 'nothing new to save on stop');
    await store.close();
  });

  it('saves after every batch with checkpointIntervalMs 0', async () => {
    const store = await storeWith(200);
    const positions = recordingPositions();
    const sub = store.subscribe({ group: 'every-batch', batchSize: 10, checkpointIntervalMs: 0, positions, handler: () => undefined });
    await sub.caughtUp();
    assert.equal(positions.saves.length, 20);
    await sub.stop();
    await store.close();
  });

  it('saves what it handled when the handler fails and when it is stopped, so a restart resumes there', async () => {
    const store = await storeWith(100);
    const positions = recordingPositions();
    const failing = store.subscribe({
      group: 'fails',
      batchSize: 50,
      checkpointIntervalMs: 60_000,
      retries: 0,
      positions,
      handler: (e) => {
        if (e.position.offset === 30n) throw new Error('boom');
      },
    });
    await assert.rejects(failing.done, /boom/);
    assert.equal(positions.saves.at(-1)?.[0]?.offset, 29n, 'saved up to the event before the failure');

    let seen = 0;
    const resumed = store.subscribe({ group: 'fails', batchSize: 50, checkpointIntervalMs: 60_000, positions, handler: () => void seen++ });
    await resumed.caughtUp();
    assert.equal(seen, 100 - 29, 'resumed at the failing event (offsets here start at 1)');
    await store.append('account-late', Deposited({ amount: 1 }));
    await resumed.caughtUp();
    await resumed.stop();
    assert.equal(positions.saves.at(-1)?.[0]?.offset, 101n);
    assert.throws(() => store.subscribe({ group: 'bad', checkpointIntervalMs: -1, handler: () => undefined }), InvalidArgumentError);
    await store.close();
  });

  it('rides out driver failures (an outage): retries reads and saves, reports them, delivers each event once', async () => {
    const inner = sqlite({ database: new DatabaseSync(':memory:') });
    let readFailures = 3;
    let saveFailures = 2;
    // The embedded store with an outage injected: its reads and checkpoint writes fail for a while.
    const overrides: Partial<ConditionalAppendDriver> = {
      readPartition: (partition, range) =>
        readFailures-- > 0 ? Promise.reject(new Error('connection reset')) : inner.readPartition(partition, range),
      writeCheckpoint: (group, positions) =>
        saveFailures-- > 0 ? Promise.reject(new Error('broker unavailable')) : inner.writeCheckpoint(group, positions),
    };
    const flaky = new Proxy(inner, {
      get: (target, key) => {
        const own = overrides[key as keyof EventStoreDriver];
        if (own !== undefined) return own;
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const reports: unknown[] = [];
    const store = createEventStore({ driver: flaky, events: accountEvents, onBackgroundError: (e) => void reports.push(e) });
    for (let i = 0; i < 5; i++) await store.append(`account-${i}`, Deposited({ amount: 1 }));
    const seen: string[] = [];
    const sub = store.subscribe({ group: 'outage', handler: (e) => void seen.push(e.id) });
    await sub.caughtUp();
    assert.equal(seen.length, 5);
    assert.equal(new Set(seen).size, 5, 'each event once');
    assert.equal(reports.length, 5, 'three failed reads and two failed saves reported');
    assert.ok(reports.every((r) => r instanceof DriverError));
    assert.equal((await store.subscriptions.position('outage'))[0]?.offset, await collectHead(store));
    await sub.stop();
    await store.close();
  });
});

async function collectHead(store: { readonly backend: string; readonly partitions: number }): Promise<bigint | undefined> {
  return runtimeOf(store).use((d) => d.partitionHead(0));
}
