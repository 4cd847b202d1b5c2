// The eventfold bin against a SQLite file: schema check (exit 0 and 1), groups and lag,
// replay of a subscription group, tail until SIGINT; dead letters are refused (no native groups).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { createEventStore, defineEvent } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { Audited, Deposited, RenamedV1, Withdrawn } from '../conformance/fixtures.ts';
import { EVENTS, eventfold, finished, jsonLines, outputUntil, start, tableRows } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-groups-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deposited as an older release defined it: any number, so a negative amount got stored. */
const LooseDeposited = defineEvent({ type: 'Deposited', schema: z.object({ amount: z.number() }) });

describe('eventfold schema check on SQLite', () => {
  const good = `sqlite:${join(dir, 'good.db')}`;
  const bad = `sqlite:${join(dir, 'bad.db')}`;
  before(async () => {
    const a = createEventStore({ driver: sqlite({ path: join(dir, 'good.db') }), events: [Deposited, Withdrawn, RenamedV1] });
    await a.append('account-1', [Deposited({ amount: 5 }), Withdrawn({ amount: 2 })]);
    await a.append('person-1', [RenamedV1({ name: 'Ada Lovelace' })]);
    await a.close();
    const b = createEventStore({ driver: sqlite({ path: join(dir, 'bad.db') }), events: [LooseDeposited, Withdrawn, RenamedV1, Audited] });
    await b.append('account-1', [LooseDeposited({ amount: 5 }), LooseDeposited({ amount: -5 }), Withdrawn({ amount: 1 })]);
    await b.append('audit-1', [Audited({ by: 'eve' })]);
    await b.append('person-1', [RenamedV1({ name: 'Ada Lovelace' })]);
    await b.close();
  });

  it("every stored type and version decodes under today's definitions: exit 0, counts per type and version", async () => {
    const r = await eventfold(['schema', 'check', '--url', good, '--events', EVENTS, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(jsonLines(r), [
      { type: 'Deposited', schemaVersion: 1, ok: 1, failed: 0, firstFailures: [] },
      { type: 'Renamed', schemaVersion: 1, ok: 1, failed: 0, firstFailures: [] },
      { type: 'Withdrawn', schemaVersion: 1, ok: 1, failed: 0, firstFailures: [] },
      { events: 3, failed: 0 },
    ]);
  });

  it('an event that no longer validates and a type no longer defined: exit 1, counts and first failures', async () => {
    const r = await eventfold(['schema', 'check', '--url', bad, '--events', EVENTS, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const lines = jsonLines(r);
    const byType = new Map(lines.filter((l) => 'type' in l).map((l) => [l['type'], l]));
    assert.equal(byType.get('Deposited')?.['ok'], 1);
    assert.equal(byType.get('Deposited')?.['failed'], 1);
    const [failure] = byType.get('Deposited')!['firstFailures'] as { streamId: string; version: number; error: string }[];
    assert.equal(failure?.streamId, 'account-1');
    assert.equal(failure?.version, 2);
    assert.match(failure?.error ?? '', /amount/);
    assert.equal(byType.get('Audited')?.['failed'], 1);
    assert.match(String((byType.get('Audited')!['firstFailures'] as { error: string }[])[0]?.error), /unknown event type "Audited"/);
    assert.equal(byType.get('Renamed')?.['ok'], 1, 'v1 upcast to v2 and valid');
    assert.deepEqual(lines.at(-1), { events: 5, failed: 2 });

    const table = await eventfold(['schema', 'check', '--url', bad, '--events', EVENTS]);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^Deposited\s+v1\s+1\s+1$/m);
    assert.match(table.stdout, /Audited v1: 1 failure, first:\n {2}audit-1 v1 at 0:4: .*unknown event type/);
    assert.match(table.stdout, /5 events checked against .*events\.ts: 2 failed/);
  });

  it('schema check without --events is a usage error (exit 2)', async () => {
    const r = await eventfold(['schema', 'check', '--url', good]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /schema check needs --events/);
  });
});

describe('eventfold groups, replay, tail, dlq on SQLite', () => {
  const path = join(dir, 'groups.db');
  const url = `sqlite:${path}`;
  let now = Date.parse('2025-06-02T09:00:00Z');
  const open = () => createEventStore({ driver: sqlite({ path }), events: [Deposited, Withdrawn], clock: () => now });

  before(async () => {
    const store = open();
    for (let i = 1; i <= 4; i++) {
      await store.append(`account-${i}`, [Deposited({ amount: i })]); // offsets 1..4, 09:00, 10:00, 11:00, 12:00
      now += 3_600_000;
    }
    const subscription = store.subscribe({ group: 'billing', handler: () => undefined });
    await subscription.caughtUp();
    await subscription.stop();
    await store.append('account-1', [Withdrawn({ amount: 1 }), Withdrawn({ amount: 1 })]); // offsets 5, 6
    await store.close();
  });

  it('groups shows the saved position, the last offset and the lag (events after the position)', async () => {
    const r = await eventfold(['groups', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(tableRows(r.stdout), [
      ['GROUP', 'PARTITION', 'POSITION', 'LAST OFFSET', 'LAG'],
      ['billing', '0', '4', '6', '2'],
    ]);
    const named = jsonLines(await eventfold(['groups', 'billing', 'unknown-group', '--url', url, '--json']));
    assert.deepEqual(named[1], {
      group: 'unknown-group',
      saved: false,
      lag: 6,
      partitions: [{ partition: 0, position: null, head: '6', lag: 6 }],
    });
  });

  it('replay moves the group: to a position (inclusive), a time, the end, the beginning', async () => {
    const lagAfter = async (from: string) => {
      const r = await eventfold(['replay', 'billing', '--from', from, '--url', url, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const [group] = jsonLines(await eventfold(['groups', 'billing', '--url', url, '--json']));
      const [p] = group!['partitions'] as { position: string | null; lag: number }[];
      return [p?.position, p?.lag];
    };
    assert.deepEqual(await lagAfter('3'), ['2', 4], 'from offset 3: the event at 3 is processed again');
    assert.deepEqual(await lagAfter('0:5'), ['4', 2]);
    assert.deepEqual(await lagAfter('2025-06-02T10:30:00Z'), ['2', 4], 'from 10:30: the 11:00 event (offset 3) on');
    assert.deepEqual(await lagAfter('2025-06-02T10:00:00Z'), ['1', 5], 'an event exactly at the time is included');
    assert.deepEqual(await lagAfter('end'), ['6', 0]);
    assert.deepEqual(await lagAfter('beginning'), [null, 6]);
    const bad = await eventfold(['replay', 'billing', '--from', 'yesterday', '--url', url]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from "yesterday" is none of/);
    const native = await eventfold(['replay', 'billing', '--from', 'beginning', '--consumer-group', '--url', url]);
    assert.equal(native.code, 2, 'SQLite has no native consumer groups');
    assert.match(native.stderr, /no native consumer groups/);
  });

  it('tail --from now prints events appended while it runs, and SIGINT stops it with exit 0', async () => {
    const child = start(['tail', '--url', url, '--json', '--poll-ms', '50']);
    const result = finished(child);
    const tailing = outputUntil(child.stderr!, (t) => t.includes('tailing'), 'the tail to start');
    const lines = outputUntil(child.stdout!, (t) => t.split('\n').length > 2, '2 event line(s)');
    await tailing;
    const store = open();
    await store.append('account-9', [Deposited({ amount: 9 })]);
    await store.append('account-9', [Withdrawn({ amount: 3 })]);
    await store.close();
    await lines;
    child.kill('SIGINT');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonLines(r).map((e) => [e['streamId'], e['version'], e['type']]),
      [
        ['account-9', 1, 'Deposited'],
        ['account-9', 2, 'Withdrawn'],
      ],
      'only what was appended after it started',
    );
    assert.match(r.stderr, /stopped after 2 events/);
  });

  it('tail --from beginning --limit stops by itself; decoded with --events', async () => {
    const r = await eventfold(['tail', '--url', url, '--from', 'beginning', '--limit', '2', '--events', EVENTS, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonLines(r).map((e) => [e['streamId'], e['decoding']]),
      [
        ['account-1', 'decoded'],
        ['account-2', 'decoded'],
      ],
    );
  });

  it('dlq on a backend without native consumer groups is a usage error naming why', async () => {
    const r = await eventfold(['dlq', 'list', 'billing', '--url', url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sqlite backend has no native consumer groups/);
  });
});
