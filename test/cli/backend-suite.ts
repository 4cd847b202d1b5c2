// The eventfold bin against one real backend, the same checks on each: streams paged until no
// cursor, stats, show, schema check, groups (a subscription group with no lag), dead letters of a native
// consumer group (list, show, redrive) and its replay, and tail woken by new events until SIGINT.
// Each backend's test file gives its URL, how to open the store, and what the backend can do.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEventStore, type EventStoreDriver } from '../../src/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { EVENTS, eventfold, finished, jsonLines, outputUntil, start, tableRows } from './run.ts';

export interface CliBackend {
  readonly name: string;
  /** The connection URL the bin is given (`--url`). */
  readonly url: string;
  /** A fresh driver for the same store, for the test's own appends and checks. */
  readonly driver: () => EventStoreDriver;
  readonly partitions: number;
  /** Subscription group names: Kafka's must be unique per store (they are Kafka consumer groups). */
  readonly group: (name: string) => string;
  /** Whether `eventfold groups` finds groups by itself (else they are named on the command line). */
  readonly listsGroups: boolean;
  readonly cleanup: () => Promise<void>;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function cliBackendSuite(b: CliBackend): void {
  const open = () => createEventStore({ driver: b.driver(), events: [Deposited, Withdrawn] });
  const streams = Array.from({ length: 12 }, (_, i) => `account-${i + 1}`);
  const events = 16; // every third stream has a withdrawal too
  const partitionOf = new Map<string, number>();
  const ledger = b.group('ledger');
  const mailer = b.group('mailer');
  const url = b.url;

  before(async () => {
    const store = open();
    for (const [i, id] of streams.entries()) {
      partitionOf.set(id, store.partitionOf(id));
      await store.append(id, i % 3 === 0 ? [Deposited({ amount: i + 1 }), Withdrawn({ amount: 1 })] : [Deposited({ amount: i + 1 })]);
    }
    const subscription = store.subscribe({ group: ledger, handler: () => undefined, checkpointIntervalMs: 0 });
    await subscription.caughtUp();
    await subscription.stop();
    // A consumer group whose handler refuses account-4's withdrawal: one dead letter.
    const consumer = store.consume({
      group: mailer,
      consumer: 'm1',
      retries: 0,
      blockMs: 50,
      handler: (e) => {
        if (e.streamId === 'account-4' && e.type === 'Withdrawn') throw new Error('mail server said no');
      },
    });
    await until(() => consumer.handled + consumer.deadLettered === events, 'every event handled or dead-lettered');
    await consumer.stop();
    await store.close();
  });

  after(() => b.cleanup());

  describe(`eventfold CLI on ${b.name}`, () => {
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

    it(`stats: 12 streams, ${events} events, split over the partitions as the store placed them`, async () => {
      const r = await eventfold(['stats', '--url', url, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const [stats] = jsonLines(r);
      assert.equal(stats?.['backend'], b.driver().name);
      assert.equal(stats?.['streams'], 12);
      assert.equal(stats?.['events'], events);
      const partitions = stats!['partitions'] as { partition: number; streams: number; events: number }[];
      assert.equal(partitions.length, b.partitions);
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

    it(`schema check decodes every stored event under the fixtures' definitions: ${events}, none failing`, async () => {
      const r = await eventfold(['schema', 'check', '--url', url, '--events', EVENTS, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(jsonLines(r).at(-1), { events, failed: 0 });
    });

    it('groups shows the subscription group with no lag in any partition', async () => {
      const r = await eventfold(['groups', '--url', url, ...(b.listsGroups ? [] : [ledger])]);
      assert.equal(r.code, 0, r.stderr);
      const rows = tableRows(r.stdout).slice(1);
      assert.equal(rows.length, b.partitions);
      for (const row of rows) assert.deepEqual([row[0], row[4]], [ledger, '0']);
      if (!b.listsGroups) {
        const unnamed = await eventfold(['groups', '--url', url]);
        assert.equal(unnamed.code, 2, 'a backend that cannot list groups asks for their names');
        assert.match(unnamed.stderr, /name them/);
      }
    });

    it('groups --consumer-group shows where a native consumer group is: no lag after it handled everything, then the new event', async () => {
      const before = jsonLines(await eventfold(['groups', '--consumer-group', mailer, '--url', url, '--json']));
      assert.equal(before.length, 1);
      assert.equal(before[0]!['lag'], 0, JSON.stringify(before));
      const parts = before[0]!['partitions'] as { partition: number; pending: number | null }[];
      assert.equal(parts.length, b.partitions);
      for (const p of parts) assert.ok(p.pending === null || p.pending === 0, `nothing pending in partition ${p.partition}`);
      const store = open();
      await store.append('account-1', [Deposited({ amount: 1 })]);
      await store.close();
      const after = await eventfold(['groups', '--consumer-group', mailer, '--url', url]);
      assert.equal(after.code, 0, after.stderr);
      const rows = tableRows(after.stdout).slice(1);
      assert.equal(rows.length, b.partitions);
      for (const row of rows) {
        const expected = Number(row[1]) === partitionOf.get('account-1') ? '1' : '0';
        assert.deepEqual([row[0], row[4]], [mailer, expected], `partition ${row[1]}`);
      }
      const missing = await eventfold(['groups', '--consumer-group', 'no-such-group', '--url', url]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no consumer group "no-such-group"/);
      const unnamed = await eventfold(['groups', '--consumer-group', '--url', url]);
      assert.equal(unnamed.code, 2);
    });

    it('dlq list, show and redrive the dead letters of a native consumer group; replay --consumer-group resets it', async () => {
      const list = await eventfold(['dlq', 'list', mailer, '--url', url, '--json']);
      assert.equal(list.code, 0, list.stderr);
      const [letter, ...rest] = jsonLines(list);
      assert.equal(rest.length, 0);
      assert.equal(letter?.['streamId'], 'account-4');
      assert.equal(letter?.['type'], 'Withdrawn');
      assert.match(String(letter?.['reason']), /mail server said no/);

      const show = jsonLines(await eventfold(['dlq', 'show', mailer, String(letter?.['id']), '--url', url, '--json', '--events', EVENTS]));
      assert.deepEqual((show[0]!['event'] as { data: unknown }).data, { amount: 1 });
      const missing = await eventfold(['dlq', 'show', mailer, 'no-such-id', '--url', url]);
      assert.equal(missing.code, 1);

      const redrive = await eventfold(['dlq', 'redrive', mailer, '--url', url, '--json']);
      assert.deepEqual(jsonLines(redrive), [{ group: mailer, redriven: 1 }]);
      assert.deepEqual(jsonLines(await eventfold(['dlq', 'list', mailer, '--url', url, '--json'])), []);

      const reset = await eventfold(['replay', mailer, '--consumer-group', '--from', 'beginning', '--url', url, '--json']);
      assert.equal(reset.code, 0, reset.stderr);
      assert.deepEqual(jsonLines(reset), [{ group: mailer, consumerGroup: true, to: 'beginning' }]);
      const store = open();
      const again = new Set<string>();
      const consumer = store.consume({ group: mailer, consumer: 'm2', blockMs: 50, handler: (e) => void again.add(e.id) });
      await until(() => again.size >= events, 'the reset group to deliver every event again');
      await consumer.stop();
      await store.close();
      const time = await eventfold(['replay', mailer, '--consumer-group', '--from', '2025-01-01T00:00:00Z', '--url', url]);
      assert.equal(time.code, 2, 'no seek of a native group to a time in the driver contract');
      assert.match(time.stderr, /only to the beginning or the end/);
    });

    it('tail prints new events from any partition as they are appended, and stops on SIGINT', async () => {
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
}
