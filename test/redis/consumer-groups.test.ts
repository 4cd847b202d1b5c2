// Native consumer groups on a real Redis: competing consumers, independent groups, reset,
// takeover of a dead consumer's entries, dead letters and redrive.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, afterEach, describe, it } from 'node:test';
import { createClient } from 'redis';
import { createEventStore, InvalidArgumentError, type EventStore, type EventOf } from '../../src/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { REDIS_URL, uniqueName } from '../services/env.ts';
import { applyToReadModel, createReadModel } from '../support/read-model.ts';

const events = [Deposited, Withdrawn] as const;
type E = EventOf<typeof events>;
const dir = mkdtempSync(join(tmpdir(), 'eventfold-groups-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const stores: EventStore<E>[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function open(prefix: string): EventStore<E> {
  const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 2 }), events });
  stores.push(store);
  return store;
}

async function appendMany(store: EventStore<E>, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const e = Deposited({ amount: i });
    ids.push(e.id);
    await store.append(`account-${i % 7}`, e);
  }
  return ids;
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('redis consumer groups', () => {
  it('shares a group among competing consumers: every event handled once; groups are independent', async () => {
    const store = open(uniqueName('compete'));
    const ids = await appendMany(store, 60);
    const seen = new Map<string, string[]>();
    const record = (consumer: string) => (e: { id: string }) => {
      seen.set(e.id, [...(seen.get(e.id) ?? []), consumer]);
    };
    const c1 = store.consume({ group: 'workers', consumer: 'c1', handler: record('c1'), batchSize: 5, blockMs: 100 });
    const c2 = store.consume({ group: 'workers', consumer: 'c2', handler: record('c2'), batchSize: 5, blockMs: 100 });
    const other: string[] = [];
    const audit = store.consume({ group: 'audit', consumer: 'a1', handler: (e) => void other.push(e.id), blockMs: 100 });
    await until(() => c1.handled + c2.handled === 60 && audit.handled === 60, 'both groups to finish');
    await Promise.all([c1.stop(), c2.stop(), audit.stop()]);
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    assert.ok([...seen.values()].every((by) => by.length === 1), 'no event handled twice within the group');
    assert.deepEqual(other.sort(), [...ids].sort(), 'the other group got every event too');
  });

  it('a reset group replays from the start; a group created at the end sees only new events', async () => {
    const store = open(uniqueName('reset'));
    await appendMany(store, 10);
    const late: number[] = [];
    const tail = store.consume({ group: 'tail', consumer: 't', start: 'end', handler: (e) => void late.push(e.data.amount), blockMs: 100 });
    let count = 0;
    const first = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
    await until(() => count === 10, 'first pass');
    await first.stop();
    await store.resetConsumerGroup('replay');
    const again = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
    await until(() => count === 20, 'replay after reset');
    await again.stop();
    await store.append('account-new', Deposited({ amount: 99 }));
    await until(() => late.length === 1, 'the tail group to see the new event');
    await tail.stop();
    assert.deepEqual(late, [99]);
  });

  it('a consumer killed mid-batch: another takes its pending entries over and the read model applies each event once', async () => {
    const prefix = uniqueName('killed');
    const store = open(prefix);
    const ids = await appendMany(store, 20);
    const file = join(dir, `${prefix}.db`);
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000');
    createReadModel(db);

    const worker = spawn(process.execPath, [new URL('../support/group-worker.ts', import.meta.url).pathname, REDIS_URL, prefix, 'projection', file, '4'], { stdio: 'inherit' });
    const exit = await new Promise<NodeJS.Signals | null>((resolve) => worker.once('exit', (_code, signal) => resolve(signal)));
    assert.equal(exit, 'SIGKILL', 'the worker died mid-batch');

    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const pendingOfDead = async (): Promise<number> => {
      let total = 0;
      for (const p of [0, 1]) total += Number((await client.xPending(`${prefix}:{p${p}}:all`, 'projection')).pending);
      return total;
    };
    const pendingBefore = await pendingOfDead();
    assert.ok(pendingBefore > 0, 'the dead consumer left entries pending');

    const survivor = store.consume({
      group: 'projection',
      consumer: 'survivor',
      claimIdleMs: 300,
      blockMs: 100,
      handler: (e) => applyToReadModel(db, e, 'survivor'),
    });
    await until(() => (db.prepare('SELECT count(*) AS n FROM applied').get() as { n: number }).n === 20, 'the read model to hold all 20 events');
    await until(async () => (await pendingOfDead()) === 0, 'nothing pending');
    await survivor.stop();
    await client.close();

    const applied = db.prepare('SELECT event_id FROM applied ORDER BY event_id').all() as { event_id: string }[];
    assert.deepEqual(applied.map((r) => r.event_id), [...ids].sort(), 'each event applied exactly once');
    const attempts = db.prepare('SELECT event_id, count(*) AS n FROM attempts GROUP BY event_id HAVING n > 1').all() as { event_id: string; n: number }[];
    // The event the worker wrote but never acknowledged was delivered again; the read model's
    // idempotent write absorbed it.
    assert.equal(attempts.length, 1, `exactly one event was delivered twice, got ${JSON.stringify(attempts)}`);
    db.close();
  });

  it('dead-letters an event whose handler keeps failing, atomically acked; it can be inspected and redriven', async () => {
    const prefix = uniqueName('dlq');
    const store = open(prefix);
    await appendMany(store, 5);
    let broken = true;
    const handled: number[] = [];
    const consumer = store.consume({
      group: 'mailer',
      consumer: 'm1',
      retries: 2,
      retryDelayMs: 1,
      blockMs: 100,
      handler: (e) => {
        if (broken && e.data.amount === 3) throw new Error('smtp down');
        handled.push(e.data.amount);
      },
    });
    await until(() => consumer.handled === 4 && consumer.deadLettered === 1, 'four handled and one dead-lettered');
    const letters = await store.deadLetters('mailer').list();
    assert.equal(letters.length, 1);
    assert.match(letters[0]!.reason, /handler failed 3 times: smtp down/);
    assert.equal(letters[0]!.event?.data.amount, 3);
    assert.equal(letters[0]!.type, 'Deposited');
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for (const p of [0, 1]) {
      assert.equal(Number((await client.xPending(`${prefix}:{p${p}}:all`, 'mailer')).pending), 0, 'the dead letter was acknowledged');
    }
    await client.close();
    broken = false;
    assert.equal(await store.deadLetters('mailer').redrive(), 1);
    await until(() => handled.includes(3), 'the redriven event to be handled');
    await consumer.stop();
    assert.deepEqual(await store.deadLetters('mailer').list(), []);
    assert.deepEqual(handled.sort((a, b) => a - b), [1, 2, 3, 4, 5]);
  });

  it('dead-letters an event delivered more than maxDeliveries times without running the handler again', async () => {
    const store = open(uniqueName('poison'));
    await store.append('account-p', Deposited({ amount: 1 }));
    const calls: string[] = [];
    // Two consumers in turn take the event and die with it in hand (stopped mid-handler).
    for (const name of ['first', 'second']) {
      const crash = new AbortController();
      const c = store.consume({
        group: 'g',
        consumer: name,
        maxDeliveries: 2,
        claimIdleMs: 150,
        blockMs: 50,
        handler: () =>
          new Promise<void>((_, reject) => {
            calls.push(name);
            crash.signal.addEventListener('abort', () => reject(new Error('crashed')));
          }),
      });
      await until(() => calls.includes(name), `${name} to take the event`);
      const stopped = c.stop();
      crash.abort();
      await stopped;
    }
    await new Promise((r) => setTimeout(r, 200));
    const third = store.consume({ group: 'g', consumer: 'third', maxDeliveries: 2, claimIdleMs: 150, blockMs: 50, handler: () => void calls.push('third') });
    await until(() => third.deadLettered === 1, 'the poison event to be dead-lettered');
    await third.stop();
    assert.deepEqual(calls, ['first', 'second'], 'the handler did not run a third time');
    const [letter] = await store.deadLetters('g').list();
    assert.equal(letter?.deliveries, 3);
    assert.match(letter!.reason, /delivered 3 times/);
  });

  it('dead-letters an event that cannot be decoded, naming it, and goes on with the rest', async () => {
    const prefix = uniqueName('undecodable');
    const store = open(prefix);
    // A writer with a broken codec stores a payload that is not JSON under the 'json' codec name.
    const broken = createEventStore({
      driver: redis({ url: REDIS_URL, prefix, partitions: 2 }),
      events,
      codec: { name: 'json', encode: () => new TextEncoder().encode('{"amount":'), decode: () => undefined },
    });
    await broken.append('account-u', Deposited({ amount: 1 }));
    await broken.close();
    await store.append('account-u', Deposited({ amount: 2 }));
    const handled: number[] = [];
    const c = store.consume({ group: 'g', consumer: 'c', blockMs: 50, handler: (e) => void handled.push(e.data.amount) });
    await until(() => c.handled === 1 && c.deadLettered === 1, 'one handled, one dead-lettered');
    await c.stop();
    assert.deepEqual(handled, [2]);
    const [letter] = await store.deadLetters('g').list();
    assert.match(letter!.reason, /cannot decode Deposited at version 1 of stream "account-u"/);
    assert.equal(letter!.event, undefined, 'the letter keeps the raw event; it does not decode');
    assert.equal(letter!.streamId, 'account-u');
    assert.equal(letter!.version, 1);
  });

  it('is refused with a typed error on a backend without native groups', () => {
    const store = createEventStore({ driver: sqlite(), events });
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), InvalidArgumentError);
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), /no native consumer groups/);
  });
});
