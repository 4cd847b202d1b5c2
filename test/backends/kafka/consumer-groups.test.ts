// Native consumer groups on a real Kafka broker (scripts/services, 127.0.0.1:9092): the
// consumer-group suite, plus what is Kafka's own — group membership (leaving on stop, on a stuck
// handler, on close), a reset refused while another process is in the group, records eventfold
// did not write, delivery counts kept in the committed offset's metadata, a topic per category.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Admin, Producer } from '@platformatic/kafka';
import { createEventStore, InvalidArgumentError, type EventStore } from '../../../src/index.ts';
import { kafka, type KafkaDriver, type KafkaDriverOptions } from '../../../src/backends/kafka/index.ts';
import { PartitionLog } from '../../../src/backends/kafka/log.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { Deposited } from '../../conformance/fixtures.ts';
import {
  appendMany,
  assertUndecodableLetter,
  groupEvents,
  oneDeadLetter,
  runConsumerGroupSuite,
  until,
  type GroupEvent,
} from '../../conformance/consumer-groups.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';

type E = GroupEvent;
// The broker's floor for session timeouts is 6 s; heartbeats often so rebalances are quick
// (the same timings as test/support/group-worker.ts).
const GROUP_TIMINGS = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 };
const prefixes: string[] = [];
const stores: EventStore<E>[] = [];

async function deleteTopics(of: readonly string[]): Promise<void> {
  const admin = new Admin({ clientId: 'groups-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const mine = (await admin.listTopics()).filter((t) => of.some((p) => t.startsWith(`${p}.`)));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.close();
  }
}

function driver(prefix: string, options: KafkaDriverOptions = {}): KafkaDriver {
  return kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2, consumerGroups: GROUP_TIMINGS, ...options });
}

function open(prefix: string, options: KafkaDriverOptions = {}): EventStore<E> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const store = createEventStore({ driver: driver(prefix, options), events: groupEvents });
  stores.push(store);
  return store;
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
    for (const t of listed?.topics ?? [])
      for (const p of t.partitions) out.set(p.partitionIndex, { offset: p.committedOffset, metadata: p.metadata });
    return out;
  });
}

/** Live members of a `consume` group and whether it is stable. */
async function groupState(prefix: string, group: string): Promise<{ state: string; members: number }> {
  const groupId = new KafkaNames(prefix).consumerGroup(group);
  return withAdmin(async (admin) => {
    const g = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
    return { state: String(g?.state ?? 'DEAD'), members: g?.members.size ?? 0 };
  });
}

runConsumerGroupSuite({
  name: 'kafka',
  driver: (prefix) => driver(prefix),
  worker: `kafka:${KAFKA_BROKERS.join(',')}`,
  // A member that stops leaves at once; 600 ms bounds a member that stops reading.
  takeoverMs: 600,
  // Events of the store at or past the group's committed offset, plus the redrive topic's backlog.
  unacknowledged: async (store, prefix, group) => {
    const offsets = await committed(prefix, group);
    let behind = 0;
    for (const partition of [0, 1]) {
      const at = offsets.get(partition)?.offset ?? 0n;
      const events = await runtimeOf(store).use((d) => d.readPartition(partition, { after: at > 0n ? at - 1n : undefined, limit: 10_000 }));
      behind += events.length;
    }
    // Redriven letters not yet acknowledged: records of the redrive topic past the group's offset.
    const names = new KafkaNames(prefix);
    behind += await withAdmin(async (admin) => {
      if (!(await admin.listTopics()).includes(names.redrive(group))) return 0;
      const [listed] = await admin.listConsumerGroupOffsets({
        groups: [{ groupId: names.consumerGroup(group), topics: [{ name: names.redrive(group), partitionIndexes: [0] }] }],
      });
      const done = listed?.topics[0]?.partitions[0]?.committedOffset ?? -1n;
      const log = new PartitionLog(admin);
      await log.describe(names.redrive(group), 1);
      let left = 0;
      for (let at = done < 0n ? 0n : done; ; ) {
        const page = await log.fetch(names.redrive(group), 0, at);
        left += page.records.length;
        if (page.next <= at) return left;
        at = page.next;
      }
    });
    return behind;
  },
  ready: (_store, prefix, group, members) =>
    until(async () => {
      const s = await groupState(prefix, group);
      return s.members === members && /stable/i.test(s.state);
    }, `${members} member(s) in group ${group}`),
  // The head the worker died on was recorded as delivered once, so its next delivery counts 2.
  afterKill: async (_store, prefix, group) => {
    const before = await committed(prefix, group);
    assert.ok(
      [...before.values()].some((c) => /^ef:\d+:1$/.test(c.metadata ?? '')),
      `head delivery recorded: ${JSON.stringify([...before.values()].map((c) => c.metadata))}`,
    );
  },
  cleanup: deleteTopics,
});

describe('kafka consumer groups: membership, foreign records, categories', () => {
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  after(() => deleteTopics(prefixes));

  it('a reset is refused while a member of another process is in the group', async () => {
    const prefix = uniqueName('kcg-reset');
    const store = open(prefix);
    await appendMany(store, 3);
    let count = 0;
    const running = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
    await until(() => count === 3, 'the first pass');
    // Another store instance is another process, as far as Kafka knows.
    const elsewhere = open(prefix);
    await assert.rejects(elsewhere.resetConsumerGroup('replay'), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.match(error.message, /stop its consumers first/);
      return true;
    });
    await running.stop();
    await elsewhere.resetConsumerGroup('replay');
    const again = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
    await until(() => count === 6, 'the replay once the group is empty');
    await again.stop();
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
      handler: () =>
        new Promise<void>((resolve) => {
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
    assertUndecodableLetter((await oneDeadLetter(store, 'g'))[0], 'account-u');
  });

  it('shares the events of every category topic among the group, each once', async () => {
    const prefix = uniqueName('kcg-cat');
    const store = open(prefix, { categories: ['account'] });
    const seen = new Map<string, number>();
    const handler = (e: { id: string }) => void seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
    const c1 = store.consume({ group: 'g', consumer: 'c1', handler, blockMs: 50 });
    const c2 = store.consume({ group: 'g', consumer: 'c2', handler, blockMs: 50 });
    // Both members in a stable group first: events delivered while c2 joins may reach both
    // (at least once across a rebalance, as documented), and this test counts each once.
    await until(async () => {
      const g = await groupState(prefix, 'g');
      return g.members === 2 && /stable/i.test(g.state);
    }, 'two members in group g');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      for (const stream of [`account-${i}`, `other-${i}`]) {
        const e = Deposited({ amount: i + 1 });
        ids.push(e.id);
        await store.append(stream, e);
      }
    }
    await until(() => c1.handled + c2.handled === 20, 'all 20 events');
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all([c1.stop(), c2.stop()]);
    assert.deepEqual([...seen.keys()].sort(), ids.sort());
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'each event once',
    );
    assert.equal(store.partitions, 4, 'two topics of two partitions');
  });
});
