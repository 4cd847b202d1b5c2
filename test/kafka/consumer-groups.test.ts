// Native consumer groups on a real Kafka broker (scripts/services, 127.0.0.1:9092): competing
// consumers, independent groups, reset, a consumer SIGKILLed mid-batch, dead letters and
// redrive, poison by delivery count, undecodable records.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, afterEach, describe, it } from 'node:test';
import { Admin, Producer } from '@platformatic/kafka';
import { createEventStore, InvalidArgumentError, type EventOf, type EventStore } from '../../src/index.ts';
import { kafka, type KafkaDriver } from '../../src/backends/kafka/index.ts';
import { KafkaNames } from '../../src/backends/kafka/topics.ts';
import { partitionOf } from '../../src/core/partition.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../services/env.ts';
import { applyToReadModel, createReadModel } from '../support/read-model.ts';

const events = [Deposited, Withdrawn] as const;
type E = EventOf<typeof events>;
// The broker's floor for session timeouts is 6 s; heartbeats often so rebalances are quick.
const GROUP_TIMINGS = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 };
const dir = mkdtempSync(join(tmpdir(), 'eventfold-kafka-groups-'));
const prefixes: string[] = [];
const stores: EventStore<E>[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  const admin = new Admin({ clientId: 'groups-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const mine = (await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(`${p}.`)));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.close();
  }
});

function open(prefix: string): EventStore<E> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const store = createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2, consumerGroups: GROUP_TIMINGS }), events });
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

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ clientId: 'groups-test', bootstrapBrokers: KAFKA_BROKERS });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/** Committed offsets (and their metadata) of a `consume` group on the events topic, by partition. */
async function committed(prefix: string, group: string): Promise<Map<number, { offset: bigint; metadata: string | null | undefined }>> {
  const names = new KafkaNames(prefix);
  return withAdmin(async (admin) => {
    const [listed] = await admin.listConsumerGroupOffsets({
      groups: [{ groupId: names.consumerGroup(group), topics: [{ name: names.events, partitionIndexes: [0, 1] }] }],
      requireStable: true,
    });
    const out = new Map<number, { offset: bigint; metadata: string | null | undefined }>();
    for (const t of listed?.topics ?? []) for (const p of t.partitions) out.set(p.partitionIndex, { offset: p.committedOffset, metadata: p.metadata });
    return out;
  });
}

/** Events of the store not yet committed by the group (per partition: the group's offset is past the last event). */
async function uncommitted(store: EventStore<E>, prefix: string, group: string): Promise<number> {
  const driver = store.runtime.driver as KafkaDriver;
  const offsets = await committed(prefix, group);
  let behind = 0;
  for (const partition of [0, 1]) {
    const last = await driver.partitionHead(partition);
    const events = await driver.readPartition(partition, { after: undefined, limit: 1000 });
    const at = offsets.get(partition)?.offset ?? -1n;
    if (last !== undefined) behind += events.filter((e) => e.position.offset >= at).length;
  }
  return behind;
}

/** Live members of a `consume` group and whether it is stable. */
async function groupState(prefix: string, group: string): Promise<{ state: string; members: number }> {
  const groupId = new KafkaNames(prefix).consumerGroup(group);
  return withAdmin(async (admin) => {
    const g = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
    return { state: String(g?.state ?? 'DEAD'), members: g?.members.size ?? 0 };
  });
}

describe('kafka consumer groups', () => {
  it('shares a group among competing consumers: every event handled once; groups are independent', async () => {
    const prefix = uniqueName('kcg-compete');
    const store = open(prefix);
    await store.append('account-0', Deposited({ amount: 1000 })); // creates the topics
    const seen = new Map<string, string[]>();
    const record = (consumer: string) => (e: { id: string }) => {
      seen.set(e.id, [...(seen.get(e.id) ?? []), consumer]);
    };
    const c1 = store.consume({ group: 'workers', consumer: 'c1', start: 'end', handler: record('c1'), batchSize: 5, blockMs: 100 });
    const c2 = store.consume({ group: 'workers', consumer: 'c2', start: 'end', handler: record('c2'), batchSize: 5, blockMs: 100 });
    const other: string[] = [];
    const audit = store.consume({ group: 'audit', consumer: 'a1', start: 'end', handler: (e) => void other.push(e.id), blockMs: 100 });
    // Both members in the group before the events arrive, so the work is really shared.
    await until(async () => {
      const s = await groupState(prefix, 'workers');
      return s.members === 2 && /stable/i.test(s.state);
    }, 'both workers to join');
    await until(async () => (await groupState(prefix, 'audit')).members === 1, 'the audit member to join');
    const ids = await appendMany(store, 60);
    await until(() => c1.handled + c2.handled === 60 && audit.handled === 60, 'both groups to finish');
    await new Promise((r) => setTimeout(r, 300)); // nothing handled twice, late
    await Promise.all([c1.stop(), c2.stop(), audit.stop()]);
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    assert.ok([...seen.values()].every((by) => by.length === 1), 'no event handled twice within the group');
    assert.ok(c1.handled > 0 && c2.handled > 0, `both consumers got work (c1 ${c1.handled}, c2 ${c2.handled})`);
    assert.equal(c1.handled + c2.handled, 60);
    assert.deepEqual(other.sort(), [...ids].sort(), 'the other group got every event too');
  });

  it('a reset group replays from the start; a group created at the end sees only new events; a reset with live members elsewhere is refused', async () => {
    const prefix = uniqueName('kcg-reset');
    const store = open(prefix);
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

    // A member of another store instance (another process, as far as Kafka knows) is live.
    const elsewhere = open(prefix);
    await assert.rejects(elsewhere.resetConsumerGroup('replay'), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.match(error.message, /stop its consumers first/);
      return true;
    });
    await again.stop();

    await until(async () => (await groupState(prefix, 'tail')).members === 1, 'the tail member to join');
    await store.append('account-new', Deposited({ amount: 99 }));
    await until(() => late.length === 1, 'the tail group to see the new event');
    await new Promise((r) => setTimeout(r, 200));
    await tail.stop();
    assert.deepEqual(late, [99]);
    assert.equal(count, 20);
  });

  it('a consumer SIGKILLed mid-batch: after the rebalance the survivor gets its work and the read model applies each event once', async () => {
    const prefix = uniqueName('kcg-killed');
    const store = open(prefix);
    const ids = await appendMany(store, 20);
    const file = join(dir, `${prefix}.db`);
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000');
    createReadModel(db);

    const worker = spawn(process.execPath, [new URL('./group-worker.ts', import.meta.url).pathname, KAFKA_BROKERS.join(','), prefix, 'projection', file, '4'], { stdio: 'inherit' });
    const exit = await new Promise<NodeJS.Signals | null>((resolve) => worker.once('exit', (_code, signal) => resolve(signal)));
    assert.equal(exit, 'SIGKILL', 'the worker died mid-batch');
    const before = await committed(prefix, 'projection');
    const left = await uncommitted(store, prefix, 'projection');
    assert.ok(left > 0 && left <= 17, `the dead consumer acked 3 or more and left work uncommitted (${left} of 20 left)`);
    // The head it died on was recorded as delivered once, so its next delivery counts 2.
    assert.ok([...before.values()].some((c) => /^ef:\d+:1$/.test(c.metadata ?? '')), `head delivery recorded: ${JSON.stringify([...before.values()].map((c) => c.metadata))}`);

    const startedAt = Date.now();
    const survivor = store.consume({ group: 'projection', consumer: 'survivor', blockMs: 100, handler: (e) => applyToReadModel(db, e, 'survivor') });
    await until(() => (db.prepare('SELECT count(*) AS n FROM applied').get() as { n: number }).n === 20, 'the read model to hold all 20 events');
    // The dead member's session (6 s) had to expire before its partitions moved.
    assert.ok(Date.now() - startedAt < 20_000);
    await until(async () => (await uncommitted(store, prefix, 'projection')) === 0, 'everything committed');
    await survivor.stop();

    const applied = db.prepare('SELECT event_id FROM applied ORDER BY event_id').all() as { event_id: string }[];
    assert.deepEqual(applied.map((r) => r.event_id), [...ids].sort(), 'each event applied exactly once');
    const attempts = db.prepare('SELECT event_id, count(*) AS n FROM attempts GROUP BY event_id HAVING n > 1').all() as { event_id: string; n: number }[];
    // The event the worker wrote but never acknowledged was delivered again; the read model's
    // idempotent write absorbed it.
    assert.equal(attempts.length, 1, `exactly one event was delivered twice, got ${JSON.stringify(attempts)}`);
    const doomed = (db.prepare("SELECT count(*) AS n FROM attempts WHERE consumer = 'doomed'").get() as { n: number }).n;
    assert.equal(doomed, 4);
    db.close();
  });

  it('dead-letters an event whose handler keeps failing, acked with it; it can be listed and redriven without a copy in the log', async () => {
    const prefix = uniqueName('kcg-dlq');
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
    let letters: Awaited<ReturnType<ReturnType<typeof store.deadLetters>['list']>> = [];
    await until(async () => (letters = await store.deadLetters('mailer').list()).length === 1, 'the letter to be readable');
    const [letter] = letters;
    assert.match(letter!.reason, /handler failed 3 times: smtp down/);
    assert.equal(letter!.event?.data.amount, 3);
    assert.equal(letter!.type, 'Deposited');
    assert.equal(letter!.deliveries, 1);
    assert.ok(Math.abs(letter!.deadAt - Date.now()) < 60_000);
    // Acknowledged: the group's offset is past it.
    const at = letter!.event!.position;
    await until(async () => ((await committed(prefix, 'mailer')).get(at.partition)?.offset ?? -1n) > at.offset, 'the dead letter to be committed past');
    assert.equal(consumer.handled, 4, 'the consumer kept going');

    broken = false;
    assert.equal(await store.deadLetters('mailer').redrive(), 1);
    await until(() => handled.includes(3), 'the redriven event to be handled');
    await consumer.stop();
    assert.deepEqual(await store.deadLetters('mailer').list(), []);
    assert.deepEqual(handled.sort((a, b) => a - b), [1, 2, 3, 4, 5]);
    // The log still holds each event once: the redrive did not append a copy.
    let inLog = 0;
    for await (const _ of store.readAll()) inLog++;
    assert.equal(inLog, 5);
    assert.equal(await store.deadLetters('mailer').redrive(), 0, 'nothing left to redrive');
  });

  it('dead-letters an event delivered more than maxDeliveries times without running the handler again', async () => {
    const store = open(uniqueName('kcg-poison'));
    await store.append('account-p', Deposited({ amount: 1 }));
    const calls: string[] = [];
    // Two consumers in turn take the event and die with it in hand (stopped mid-handler); a
    // member that stops reading for claimIdleMs leaves the group, handing its partitions on.
    for (const name of ['first', 'second']) {
      const crash = new AbortController();
      const c = store.consume({
        group: 'g',
        consumer: name,
        maxDeliveries: 2,
        claimIdleMs: 600,
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
    const third = store.consume({ group: 'g', consumer: 'third', maxDeliveries: 2, claimIdleMs: 600, blockMs: 50, handler: () => void calls.push('third') });
    await until(() => third.deadLettered === 1, 'the poison event to be dead-lettered');
    await third.stop();
    assert.deepEqual(calls, ['first', 'second'], 'the handler did not run a third time');
    let letters: Awaited<ReturnType<ReturnType<typeof store.deadLetters>['list']>> = [];
    await until(async () => (letters = await store.deadLetters('g').list()).length === 1, 'the letter to be readable');
    assert.equal(letters[0]?.deliveries, 3);
    assert.match(letters[0]!.reason, /delivered 3 times/);
  });

  it('a stopped consumer leaves the Kafka group at once, a stuck one after claimIdleMs without reads, and closing the store leaves at once', async () => {
    const prefix = uniqueName('kcg-leave');
    const store = open(prefix);
    await appendMany(store, 3);
    const stopped = store.consume({ group: 'g', consumer: 'a', claimIdleMs: 30_000, blockMs: 50, handler: () => undefined });
    await until(() => stopped.handled === 3, 'a to handle everything');
    assert.equal((await groupState(prefix, 'g')).members, 1);
    await stopped.stop();
    assert.equal((await groupState(prefix, 'g')).members, 0, 'stop() left the group before it resolved');

    // A member stuck in its handler stops reading: after claimIdleMs it leaves the group.
    const release = new AbortController();
    let taken = 0;
    const stuck = store.consume({
      group: 'g',
      consumer: 's',
      claimIdleMs: 500,
      blockMs: 50,
      handler: () => new Promise<void>((resolve) => {
        taken++;
        release.signal.addEventListener('abort', () => resolve());
      }),
    });
    await store.append('account-stuck', Deposited({ amount: 1 }));
    await until(() => taken === 1, 's to take the new event');
    const stuckAt = Date.now();
    await until(async () => (await groupState(prefix, 'g')).members === 0, 's to leave the group', 5000);
    assert.ok(Date.now() - stuckAt >= 300, 'not before claimIdleMs');
    release.abort();
    await stuck.stop();

    const running = store.consume({ group: 'g', consumer: 'b', blockMs: 50, handler: () => undefined });
    await until(async () => (await groupState(prefix, 'g')).members === 1, 'b to join');
    await until(() => running.handled === 1, 'b to get the event s never acknowledged');
    await store.close();
    assert.equal((await groupState(prefix, 'g')).members, 0, 'close left the group');
    await running.done;
  });

  it('dead-letters a record that cannot be decoded, naming it, skips records eventfold did not write, and goes on with the rest', async () => {
    const prefix = uniqueName('kcg-undecodable');
    const store = open(prefix);
    await store.append('account-x', Deposited({ amount: 1 })); // creates the topics
    const names = new KafkaNames(prefix);
    const partition = partitionOf('account-u', 2);
    const h = (entries: [string, string][]): Map<Buffer, Buffer> => new Map(entries.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
    const producer = new Producer({ clientId: 'groups-test-raw', bootstrapBrokers: KAFKA_BROKERS });
    try {
      await producer.send({
        messages: [
          // Not eventfold's: no envelope headers.
          { topic: names.events, partition, key: Buffer.from('something-else'), value: Buffer.from('hello') },
          // eventfold's envelope, a payload that is not JSON under the 'json' codec.
          {
            topic: names.events,
            partition,
            key: Buffer.from('account-u'),
            value: Buffer.from('{"amount":'),
            headers: h([
              ['ef-id', '00000000-0000-4000-8000-00000000dead'],
              ['ef-type', 'Deposited'],
              ['ef-schema', '1'],
              ['ef-codec', 'json'],
              ['ef-meta', '{}'],
              ['ef-version', '1'],
              ['ef-time', String(Date.now())],
            ]),
          },
        ],
      });
    } finally {
      await producer.close();
    }
    await store.append('account-u', Deposited({ amount: 2 }));
    const handled: number[] = [];
    const c = store.consume({ group: 'g', consumer: 'c', blockMs: 50, handler: (e) => void handled.push(e.data.amount) });
    await until(() => c.handled === 2 && c.deadLettered === 1, 'two handled, one dead-lettered');
    await c.stop();
    assert.deepEqual(handled.sort(), [1, 2]);
    let letters: Awaited<ReturnType<ReturnType<typeof store.deadLetters>['list']>> = [];
    await until(async () => (letters = await store.deadLetters('g').list()).length === 1, 'the letter to be readable');
    const [letter] = letters;
    assert.match(letter!.reason, /cannot decode Deposited at version 1 of stream "account-u"/);
    assert.equal(letter!.event, undefined, 'the letter keeps the raw event; it does not decode');
    assert.equal(letter!.streamId, 'account-u');
    assert.equal(letter!.version, 1);
  });
});
