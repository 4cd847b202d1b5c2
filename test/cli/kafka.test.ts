// The eventfold bin against a real Kafka (2 partitions, topics of a prefix of its own, named by
// KafkaNames and deleted after): the stream list derived by the core (no driver list on a log),
// stats, show, schema check, groups, which must be named (Kafka cannot list them), and the dead
// letters of a native consumer group.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEventStore } from '../../src/index.ts';
import { Admin } from '@platformatic/kafka';
import { kafka } from '../../src/backends/kafka/index.ts';
import { KafkaNames } from '../../src/backends/kafka/topics.ts';
import { deleteStoreTopics } from '../backends/kafka/cleanup.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../services/env.ts';
import { EVENTS, eventfold, finished, jsonLines, outputUntil, start } from './run.ts';

const prefix = uniqueName('cli');
const url = `kafka://${KAFKA_BROKERS.join(',')}?prefix=${prefix}&partitions=2&routing=false`;
const streams = ['order-1', 'order-2', 'order-3', 'order-4', 'order-5'];
const partitionOf = new Map<string, number>();

before(async () => {
  const store = createEventStore({
    driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2, routing: false }),
    events: [Deposited, Withdrawn],
  });
  for (const id of streams) {
    partitionOf.set(id, store.partitionOf(id));
    await store.append(id, [Deposited({ amount: 3 }), Withdrawn({ amount: 1 })]);
  }
  const subscription = store.subscribe({ group: `${prefix}-ledger`, handler: () => undefined, checkpointIntervalMs: 0 });
  await subscription.caughtUp();
  await subscription.stop();
  await store.append('order-1', [Deposited({ amount: 9 })]);
  // A consumer group whose handler refuses order-3's withdrawal: one dead letter.
  let seen = 0;
  const consumer = store.consume({
    group: 'mailer',
    consumer: 'm1',
    retries: 0,
    blockMs: 100,
    handler: (e) => {
      seen++;
      if (e.streamId === 'order-3' && e.type === 'Withdrawn') throw new Error('mail server said no');
    },
  });
  const deadline = Date.now() + 30_000;
  while (consumer.handled + consumer.deadLettered < 11) {
    if (Date.now() > deadline) throw new Error(`the consumer group saw ${seen} of 11 events`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await consumer.stop();
  await store.close();
});

after(async () => {
  await deleteStoreTopics([prefix], 'cli-test-cleanup');
  const names = new KafkaNames(prefix);
  const admin = new Admin({ clientId: 'cli-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const existing = new Set(await admin.listTopics());
    const topics = [names.deadLetters('mailer'), names.redrive('mailer')].filter((t) => existing.has(t));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } finally {
    await admin.close();
  }
});

describe('eventfold CLI on Kafka', () => {
  it('streams: one page per partition (the core reads the log), every stream at its version', async () => {
    const seen: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await eventfold(['streams', '--url', url, '--json', ...(cursor ? ['--after', cursor] : [])]);
      assert.equal(r.code, 0, r.stderr);
      const lines = jsonLines(r);
      const last = lines.at(-1);
      cursor = last && 'cursor' in last ? String(last['cursor']) : undefined;
      seen.push(...lines.filter((l) => 'streamId' in l));
      pages++;
    } while (cursor !== undefined && pages < 10);
    assert.equal(pages, 2, 'a page per partition');
    assert.deepEqual(
      seen.map((s) => [s['streamId'], s['partition'], s['version']]).sort(),
      streams.map((id) => [id, partitionOf.get(id), id === 'order-1' ? 3 : 2]).sort(),
    );
  });

  it('stats and show', async () => {
    const [stats] = jsonLines(await eventfold(['stats', '--url', url, '--json']));
    assert.equal(stats?.['backend'], 'kafka');
    assert.equal(stats?.['streams'], 5);
    assert.equal(stats?.['events'], 11);
    const show = jsonLines(await eventfold(['show', 'order-1', '--url', url, '--json', '--events', EVENTS]));
    assert.deepEqual(
      show.map((e) => [e['version'], e['type'], e['data']]),
      [
        [1, 'Deposited', { amount: 3 }],
        [2, 'Withdrawn', { amount: 1 }],
        [3, 'Deposited', { amount: 9 }],
      ],
    );
  });

  it('schema check reads every partition: 11 events, none failing', async () => {
    const r = await eventfold(['schema', 'check', '--url', url, '--events', EVENTS, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(jsonLines(r).at(-1), { events: 11, failed: 0 });
  });

  it('groups needs names on Kafka (exit 2 without); a named group shows its lag', async () => {
    const unnamed = await eventfold(['groups', '--url', url]);
    assert.equal(unnamed.code, 2);
    assert.match(unnamed.stderr, /kafka backend cannot list its groups: name them/);
    const [group] = jsonLines(await eventfold(['groups', `${prefix}-ledger`, '--url', url, '--json']));
    assert.equal(group?.['saved'], true);
    assert.equal(group?.['lag'], 1, 'the one event appended after the subscription stopped');
    const p = (group!['partitions'] as { partition: number; lag: number }[]).find((x) => x.lag === 1);
    assert.equal(p?.partition, partitionOf.get('order-1'));
  });

  it('groups --consumer-group: the Kafka consumer group handled every event (committed offsets), lag 0', async () => {
    const r = await eventfold(['groups', '--consumer-group', 'mailer', '--url', url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [group] = jsonLines(r);
    assert.equal(group?.['lag'], 0, JSON.stringify(group));
    const parts = group!['partitions'] as { partition: number; position: string | null; pending: number | null }[];
    assert.deepEqual(
      parts.map((p) => [p.partition, p.pending]),
      [
        [0, null],
        [1, null],
      ],
      'Kafka keeps no pending count outside the member',
    );
    assert.ok(
      parts.every((p) => p.position !== null),
      'a position in every partition',
    );
  });

  it('dlq list and redrive the dead letters of a Kafka consumer group', async () => {
    const list = await eventfold(['dlq', 'list', 'mailer', '--url', url, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const letters = jsonLines(list);
    assert.deepEqual(
      letters.map((l) => [l['streamId'], l['version'], l['type']]),
      [['order-3', 2, 'Withdrawn']],
    );
    assert.match(String(letters[0]?.['reason']), /mail server said no/);
    const show = jsonLines(
      await eventfold(['dlq', 'show', 'mailer', String(letters[0]?.['id']), '--url', url, '--json', '--events', EVENTS]),
    );
    assert.deepEqual((show[0]!['event'] as { data: unknown }).data, { amount: 1 });
    const redrive = await eventfold(['dlq', 'redrive', 'mailer', '--url', url, '--json']);
    assert.equal(redrive.code, 0, redrive.stderr);
    assert.deepEqual(jsonLines(redrive), [{ group: 'mailer', redriven: 1 }]);
  });

  it('replay moves a subscription group back to the beginning: groups then shows every event as lag', async () => {
    const group = `${prefix}-ledger`;
    const r = await eventfold(['replay', group, '--from', 'beginning', '--url', url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [after] = jsonLines(await eventfold(['groups', group, '--url', url, '--json']));
    assert.equal(after?.['lag'], 11, 'all 11 events are to be handled again');
  });

  it('tail follows new events on the log and stops on SIGINT', async () => {
    const child = start(['tail', '--url', url, '--json', '--poll-ms', '200']);
    const result = finished(child);
    const tailing = outputUntil(child.stderr!, (t) => t.includes('tailing'), 'the tail to start');
    const lines = outputUntil(child.stdout!, (t) => t.split('\n').length > 1, '1 event line(s)');
    await tailing;
    const store = createEventStore({
      driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2, routing: false }),
      events: [Deposited],
    });
    await store.append('order-6', [Deposited({ amount: 6 })]);
    await store.close();
    await lines;
    child.kill('SIGINT');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonLines(r).map((e) => [e['streamId'], e['version'], e['data']]),
      [['order-6', 1, { amount: 6 }]],
    );
  });
});
