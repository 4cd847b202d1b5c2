// Atomic appends across partitions on the real Pulsar standalone (appendAcross: one Pulsar
// transaction, each partition's commit through its own lease): all or nothing, a claim by
// another store before or during the transaction, and END_TXN answers that are lost.
// The pause points wrap the client's transaction calls in this process (txn-hooks.ts).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PulsarTimeoutError } from '../../../src/backends/pulsar/client/errors.ts';
import { pulsar, type PulsarDriver } from '../../../src/backends/pulsar/index.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { createEventStore, type EventStore, ExpectedVersionConflictError } from '../../../src/index.ts';
import { accountEvents, Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';
import { admin, dropNamespace } from './support.ts';
import { beforeCommit, beforeSends, commitFails } from './txn-hooks.ts';

const namespace = uniqueName('multi');
const PARTITIONS = 3;
/** Short, so the tests that wait for the coordinator to abort a transaction stay short. */
const TXN_TIMEOUT_MS = 3000;

type Store = EventStore<ReturnType<typeof Deposited> | ReturnType<typeof Withdrawn>>;
const stores: Store[] = [];
after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await dropNamespace('public', namespace);
});

async function openStore(prefix: string): Promise<{ store: Store; driver: PulsarDriver }> {
  const driver = pulsar({
    serviceUrl: PULSAR_SERVICE_URL,
    adminUrl: PULSAR_URL,
    namespace,
    prefix,
    partitions: PARTITIONS,
    transactionTimeoutMs: TXN_TIMEOUT_MS,
  });
  const store = createEventStore({ driver, events: accountEvents });
  stores.push(store);
  await runtimeOf(store).use(async () => undefined); // opens the driver
  return { store, driver };
}

/** A stream id that lands in `partition`. */
function streamIn(partition: number, base: string): string {
  for (let i = 0; ; i++) if (partitionOf(`${base}-${i}`, PARTITIONS) === partition) return `${base}-${i}`;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** What a fresh store of `prefix` reads of each stream: [version, amount] pairs. */
async function freshRead(prefix: string, streams: readonly string[]): Promise<[number, number][][]> {
  const { store } = await openStore(prefix);
  const out: [number, number][][] = [];
  for (const s of streams) out.push((await collect(store.readStream(s))).map((e) => [e.version, e.data.amount]));
  await store.close();
  return out;
}

/** The last confirmed entry of a partition (admin REST: it counts entries readers are not given yet). */
async function lastConfirmed(driver: PulsarDriver, partition: number): Promise<string> {
  const res = await admin('GET', `persistent/${driver.names.partition(partition).slice('persistent://'.length)}/lastMessageId`);
  assert.ok(res.ok, `lastMessageId answered ${res.status}`);
  const id = (await res.json()) as { ledgerId: number; entryId: number };
  return `${id.ledgerId}:${id.entryId}`;
}

describe('pulsar: atomic append across partitions', () => {
  it('appends to streams of three partitions in one transaction, or to none', async () => {
    const prefix = uniqueName('all');
    const { store, driver } = await openStore(prefix);
    assert.equal(typeof driver.appendAcross, 'function');
    const [a, b, c] = [0, 1, 2].map((p) => streamIn(p, 'account'));
    await store.append(b!, Deposited({ amount: 1 }));
    const batch = [
      { streamId: a!, events: [Deposited({ amount: 10 }), Deposited({ amount: 11 })], expectedVersion: 'no_stream' as const },
      { streamId: b!, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
      { streamId: c!, events: Deposited({ amount: 30 }), expectedVersion: 0 },
    ];
    const ok = await store.appendMany(batch);
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [2, 2, 1],
    );
    assert.deepEqual(
      ok.map((o) => o.events.map((e) => e.position.partition)),
      [[0, 0], [1], [2]],
    );
    // Read right after, in this store and in a fresh one: visible at once.
    assert.deepEqual(
      (await collect(store.readStream(a!))).map((e) => e.data.amount),
      [10, 11],
    );
    assert.deepEqual(await freshRead(prefix, [a!, b!, c!]), [
      [
        [1, 10],
        [2, 11],
      ],
      [
        [1, 1],
        [2, 1],
      ],
      [[1, 30]],
    ]);
    // One stale expectation: nothing of the batch becomes visible, in any partition.
    await assert.rejects(
      store.appendMany([
        { streamId: a!, events: Deposited({ amount: 99 }), expectedVersion: 2 },
        { streamId: c!, events: Deposited({ amount: 99 }), expectedVersion: 0 },
      ]),
      ExpectedVersionConflictError,
    );
    // An exact retry of the stored batch is recognised.
    const again = await store.appendMany(batch);
    assert.deepEqual(
      again.map((o) => o.alreadyStored),
      [true, true, true],
    );
    const all = await collect(store.readAll());
    assert.equal(all.length, 5);
    assert.ok(all.every((e) => e.data.amount !== 99));
  });

  it('another store claims a partition before the sends: the send there fails, nothing shows, the core claims back and succeeds', async () => {
    const prefix = uniqueName('fence-early');
    const one = await openStore(prefix);
    const two = await openStore(prefix);
    const x = streamIn(0, 'account-x');
    const y = streamIn(1, 'account-y');
    const z = streamIn(0, 'account-z');
    await one.store.appendMany([
      { streamId: x, events: Deposited({ amount: 1 }) },
      { streamId: y, events: Deposited({ amount: 1 }) },
    ]);
    let transactions = 0;
    const restore = beforeSends(async () => {
      // `two` takes partition 0 (fencing `one`'s producer there) and appends to another stream of it.
      if (transactions++ === 0) await two.store.append(z, Deposited({ amount: 7 }));
    });
    try {
      const ok = await one.store.appendMany([
        { streamId: x, events: Deposited({ amount: 2 }), expectedVersion: 1 },
        { streamId: y, events: Withdrawn({ amount: 2 }), expectedVersion: 1 },
      ]);
      assert.deepEqual(
        ok.map((o) => o.nextExpectedVersion),
        [2, 2],
      );
    } finally {
      restore();
    }
    assert.equal(transactions, 2, 'the first transaction was given up and a second one made');
    assert.deepEqual(await freshRead(prefix, [x, y, z]), [
      [
        [1, 1],
        [2, 2],
      ],
      [
        [1, 1],
        [2, 2],
      ],
      [[1, 7]],
    ]);
  });

  it('another store claims a partition between the sends and END_TXN: the commit stands and the claimer sees it before it checks', async () => {
    const prefix = uniqueName('fence-late');
    const one = await openStore(prefix);
    const two = await openStore(prefix);
    const x = streamIn(0, 'account-x');
    const y = streamIn(2, 'account-y');
    await one.store.appendMany([
      { streamId: x, events: Deposited({ amount: 1 }) },
      { streamId: y, events: Deposited({ amount: 1 }) },
    ]);
    let twoDone = false;
    let twoOutcome: Promise<unknown> | undefined;
    let twoDoneAtCommit: boolean | undefined;
    const restore = beforeCommit(async () => {
      if (twoOutcome) return;
      const before = await lastConfirmed(one.driver, 0); // our commit on partition 0, not readable yet
      // `two` appends to x expecting version 1, as `one` does: it claims partition 0 (fencing
      // `one`'s producer) and writes its marker…
      twoOutcome = two.store.append(x, Deposited({ amount: 5 }), { expectedVersion: 1 }).finally(() => {
        twoDone = true;
      });
      twoOutcome.catch(() => undefined);
      for (let i = 0; (await lastConfirmed(one.driver, 0)) === before; i++) {
        assert.ok(i < 300, "two's claim marker never landed");
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      twoDoneAtCommit = twoDone;
    });
    let ok: Awaited<ReturnType<Store['appendMany']>>;
    try {
      ok = await one.store.appendMany([
        { streamId: x, events: Deposited({ amount: 2 }), expectedVersion: 1 },
        { streamId: y, events: Withdrawn({ amount: 2 }), expectedVersion: 1 },
      ]);
    } finally {
      restore();
    }
    assert.equal(twoDoneAtCommit, false, "two's claim waited for the open transaction");
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [2, 2],
    );
    // `two` caught up past our commit, so its stale expectation is a plain conflict.
    await assert.rejects(twoOutcome!, (error: unknown) => error instanceof ExpectedVersionConflictError && error.actualVersion === 2);
    assert.deepEqual(await freshRead(prefix, [x, y]), [
      [
        [1, 1],
        [2, 2],
      ],
      [
        [1, 1],
        [2, 2],
      ],
    ]);
    // `one` lost partition 0 without knowing: its next append there claims back and goes on from the truth.
    await one.store.append(x, Deposited({ amount: 3 }), { expectedVersion: 2 });
    assert.deepEqual(
      (await freshRead(prefix, [x]))[0]!.map(([v]) => v),
      [1, 2, 3],
    );
  });

  it('END_TXN committed but its answer was lost: settled by reading the log, the append stands once', async () => {
    const prefix = uniqueName('lost-answer');
    const { store } = await openStore(prefix);
    const [a, b] = [1, 2].map((p) => streamIn(p, 'account'));
    const restore = commitFails(() => new PulsarTimeoutError('test: END_TXN answer lost'), true);
    let ok: Awaited<ReturnType<Store['appendMany']>>;
    try {
      ok = await store.appendMany([
        { streamId: a!, events: Deposited({ amount: 4 }) },
        { streamId: b!, events: Deposited({ amount: 6 }) },
      ]);
    } finally {
      restore();
    }
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [1, 1],
    );
    assert.deepEqual(await freshRead(prefix, [a!, b!]), [[[1, 4]], [[1, 6]]]);
    await store.appendMany([
      { streamId: a!, events: Deposited({ amount: 1 }), expectedVersion: 1 },
      { streamId: b!, events: Deposited({ amount: 1 }), expectedVersion: 1 },
    ]);
    assert.deepEqual(
      (await freshRead(prefix, [a!, b!])).map((s) => s.map(([v]) => v)),
      [
        [1, 2],
        [1, 2],
      ],
    );
  });

  it('END_TXN never reached the coordinator: the settle waits for the abort (the timeout), then the core appends again, once', async () => {
    const prefix = uniqueName('lost-commit');
    const { store } = await openStore(prefix);
    const [a, b] = [0, 2].map((p) => streamIn(p, 'account'));
    let failures = 0;
    const restoreFail = commitFails(() => {
      failures++;
      restoreFail(); // only the first
      return new PulsarTimeoutError('test: END_TXN not sent');
    }, false);
    const started = Date.now();
    let ok: Awaited<ReturnType<Store['appendMany']>>;
    try {
      ok = await store.appendMany([
        { streamId: a!, events: Deposited({ amount: 4 }) },
        { streamId: b!, events: Deposited({ amount: 6 }) },
      ]);
    } finally {
      restoreFail();
    }
    const took = Date.now() - started;
    assert.equal(failures, 1);
    assert.ok(took >= TXN_TIMEOUT_MS - 500, `the settle waited for the coordinator to abort (${took} ms)`);
    assert.ok(took < TXN_TIMEOUT_MS + 15_000, `bounded by the transaction timeout (${took} ms)`);
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [1, 1],
    );
    assert.deepEqual(await freshRead(prefix, [a!, b!]), [[[1, 4]], [[1, 6]]]);
  });
});
