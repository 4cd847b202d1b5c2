// The eventfold bin against a real Redis (4 partitions, a prefix of its own): streams paged over
// partitions, stats, show, groups, dead letters of a native consumer group (list, show, redrive),
// replay of a consumer group, and tail woken by the blocking read until SIGINT.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { createEventStore } from '../../src/index.ts';
import { redis, RedisKeys } from '../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { REDIS_URL, uniqueName } from '../services/env.ts';
import { EVENTS, eventfold, finished, jsonLines, outputUntil, start, tableRows } from './run.ts';

const prefix = uniqueName('cli');
const url = `${REDIS_URL}?prefix=${prefix}&partitions=4`;
const open = () => createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 4 }), events: [Deposited, Withdrawn] });
const streams = Array.from({ length: 12 }, (_, i) => `account-${i + 1}`);
const partitionOf = new Map<string, number>();

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  const store = open();
  for (const [i, id] of streams.entries()) {
    partitionOf.set(id, store.partitionOf(id));
    await store.append(id, i % 3 === 0 ? [Deposited({ amount: i + 1 }), Withdrawn({ amount: 1 })] : [Deposited({ amount: i + 1 })]);
  }
  const subscription = store.subscribe({ group: 'ledger', handler: () => undefined });
  await subscription.caughtUp();
  await subscription.stop();
  // A consumer group whose handler refuses account-4's withdrawal: one dead letter.
  const consumer = store.consume({
    group: 'mailer',
    consumer: 'm1',
    retries: 0,
    blockMs: 50,
    handler: (e) => {
      if (e.streamId === 'account-4' && e.type === 'Withdrawn') throw new Error('mail server said no');
    },
  });
  await until(() => consumer.handled + consumer.deadLettered === 16, 'every event handled or dead-lettered');
  await consumer.stop();
  await store.close();
});

after(async () => {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  for await (const page of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 1000 })) {
    for (const key of page) await client.unlink(key);
  }
  await client.close();
});

describe('eventfold CLI on Redis', () => {
  it('streams, page by page until no cursor, lists every stream with its partition and version', async () => {
    const seen: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await eventfold(['streams', '--url', url, '--json', '--limit', '5', ...(cursor ? ['--after', cursor] : [])]);
      assert.equal(r.code, 0, r.stderr);
      const lines = jsonLines(r);
      const last = lines.at(-1);
      cursor = last && 'cursor' in last ? String(last['cursor']) : undefined;
      seen.push(...lines.filter((l) => 'streamId' in l));
      pages++;
    } while (cursor !== undefined && pages < 50);
    const byId = new Map(seen.map((s) => [s['streamId'], s]));
    assert.deepEqual([...byId.keys()].sort(), [...streams].sort());
    for (const [i, id] of streams.entries()) {
      assert.deepEqual(byId.get(id), { streamId: id, partition: partitionOf.get(id), version: i % 3 === 0 ? 2 : 1 });
    }
  });

  it('stats: 12 streams, 16 events, split over 4 partitions as the store placed them', async () => {
    const [stats] = jsonLines(await eventfold(['stats', '--url', url, '--json']));
    assert.equal(stats?.['backend'], 'redis');
    assert.equal(stats?.['streams'], 12);
    assert.equal(stats?.['events'], 16);
    const partitions = stats!['partitions'] as { partition: number; streams: number; events: number }[];
    assert.equal(partitions.length, 4);
    for (const p of partitions) {
      const mine = streams.filter((id) => partitionOf.get(id) === p.partition);
      assert.equal(p.streams, mine.length, `partition ${p.partition}`);
    }
  });

  it('show decodes a stream from its partition', async () => {
    const lines = jsonLines(await eventfold(['show', 'account-4', '--url', url, '--json', '--events', EVENTS]));
    assert.deepEqual(
      lines.map((l) => [l['version'], l['type'], l['data'], (l['position'] as { partition: number }).partition]),
      [
        [1, 'Deposited', { amount: 4 }, partitionOf.get('account-4')],
        [2, 'Withdrawn', { amount: 1 }, partitionOf.get('account-4')],
      ],
    );
  });

  it('groups lists the subscription group with no lag in any partition', async () => {
    const r = await eventfold(['groups', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const rows = tableRows(r.stdout).slice(1);
    assert.equal(rows.length, 4);
    for (const row of rows) assert.deepEqual([row[0], row[4]], ['ledger', '0']);
  });

  it('dlq list, show and redrive the dead letters of a native consumer group; replay --consumer-group resets it', async () => {
    const list = await eventfold(['dlq', 'list', 'mailer', '--url', url, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const [letter, ...rest] = jsonLines(list);
    assert.equal(rest.length, 0);
    assert.equal(letter?.['streamId'], 'account-4');
    assert.equal(letter?.['type'], 'Withdrawn');
    assert.match(String(letter?.['reason']), /mail server said no/);

    const show = jsonLines(await eventfold(['dlq', 'show', 'mailer', String(letter?.['id']), '--url', url, '--json', '--events', EVENTS]));
    assert.deepEqual((show[0]!['event'] as { data: unknown }).data, { amount: 1 });
    const missing = await eventfold(['dlq', 'show', 'mailer', 'no-such-id', '--url', url]);
    assert.equal(missing.code, 1);

    const redrive = await eventfold(['dlq', 'redrive', 'mailer', '--url', url, '--json']);
    assert.deepEqual(jsonLines(redrive), [{ group: 'mailer', redriven: 1 }]);
    assert.deepEqual(jsonLines(await eventfold(['dlq', 'list', 'mailer', '--url', url, '--json'])), []);

    const reset = await eventfold(['replay', 'mailer', '--consumer-group', '--from', 'beginning', '--url', url, '--json']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.deepEqual(jsonLines(reset), [{ group: 'mailer', consumerGroup: true, to: 'beginning' }]);
    const store = open();
    const again: string[] = [];
    const consumer = store.consume({ group: 'mailer', consumer: 'm2', blockMs: 50, handler: (e) => void again.push(e.streamId) });
    await until(() => again.length >= 16, 'the reset group to deliver every event again');
    await consumer.stop();
    await store.close();
    const time = await eventfold(['replay', 'mailer', '--consumer-group', '--from', '2025-01-01T00:00:00Z', '--url', url]);
    assert.equal(time.code, 2, 'no seek of a native group to a time in the driver contract');
    assert.match(time.stderr, /only to the beginning or the end/);
  });

  it('tail waits on the blocking read, prints new events from any partition, and stops on SIGINT', async () => {
    const child = start(['tail', '--url', url, '--json', '--poll-ms', '5000']);
    const result = finished(child);
    const tailing = outputUntil(child.stderr!, (t) => t.includes('tailing'), 'the tail to start');
    const lines = outputUntil(child.stdout!, (t) => t.split('\n').length > 2, '2 event line(s)');
    await tailing;
    const store = open();
    await store.append('account-20', [Deposited({ amount: 20 })]);
    await store.append('account-21', [Deposited({ amount: 21 })]);
    await store.close();
    await lines;
    child.kill('SIGINT');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonLines(r)
        .map((e) => e['streamId'])
        .sort(),
      ['account-20', 'account-21'],
    );
  });
});
