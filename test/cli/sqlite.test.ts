// The eventfold bin against a SQLite file: streams, show, stats, usage errors and exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEventStore } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { Deposited, RenamedV1, Withdrawn } from '../conformance/fixtures.ts';
import { EVENTS, eventfold, jsonLines, ROOT, tableRows } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-'));
const url = `sqlite:${join(dir, 'events.db')}`;
after(() => rmSync(dir, { recursive: true, force: true }));

before(async () => {
  const store = createEventStore({ driver: sqlite({ path: join(dir, 'events.db') }), events: [Deposited, Withdrawn, RenamedV1] });
  await store.append('account-1', [Deposited({ amount: 5 }), Withdrawn({ amount: 2 })]);
  await store.append('account-2', [Deposited({ amount: 7 })]);
  await store.append('person-1', [RenamedV1({ name: 'Ada Lovelace' })]);
  await store.close();
});

describe('eventfold CLI on SQLite: streams, show, stats', () => {
  it('streams lists every stream with its version, as a table and as JSON lines', async () => {
    const table = await eventfold(['streams', '--url', url]);
    assert.equal(table.code, 0, table.stderr);
    assert.deepEqual(tableRows(table.stdout), [
      ['STREAM', 'PARTITION', 'VERSION'],
      ['account-1', '0', '2'],
      ['account-2', '0', '1'],
      ['person-1', '0', '1'],
    ]);
    assert.ok(!table.stdout.includes('\u001b['), 'no colour when stdout is not a terminal');
    const json = await eventfold(['--json', 'streams', '--url', url]);
    assert.deepEqual(jsonLines(json), [
      { streamId: 'account-1', partition: 0, version: 2 },
      { streamId: 'account-2', partition: 0, version: 1 },
      { streamId: 'person-1', partition: 0, version: 1 },
    ]);
  });

  it('streams pages with --limit and --after <cursor>; the URL may come from EVENTFOLD_URL', async () => {
    const first = jsonLines(await eventfold(['streams', '--json', '--limit', '2'], { EVENTFOLD_URL: url }));
    assert.deepEqual(
      first.slice(0, 2).map((s) => s['streamId']),
      ['account-1', 'account-2'],
    );
    const cursor = first[2]?.['cursor'];
    assert.equal(typeof cursor, 'string', 'a last line names the cursor of the next page');
    const second = await eventfold(['streams', '--limit', '2', '--after', String(cursor)], { EVENTFOLD_URL: url });
    assert.deepEqual(tableRows(second.stdout).slice(1), [['person-1', '0', '1']]);
    assert.doesNotMatch(second.stderr, /more:/, 'the last page names no next one');
    const table = await eventfold(['streams', '--limit', '1', '--url', url]);
    assert.match(table.stderr, /more: eventfold streams --after account-1/);
  });

  it('show prints the raw payloads without --events, and decodes and upcasts with them', async () => {
    const raw = await eventfold(['show', 'person-1', '--url', url, '--json']);
    assert.equal(raw.code, 0, raw.stderr);
    const [stored] = jsonLines(raw);
    assert.equal(stored?.['decoding'], 'raw');
    assert.deepEqual(stored?.['data'], { name: 'Ada Lovelace' });
    assert.equal(stored?.['schemaVersion'], 1);
    const decoded = jsonLines(await eventfold(['show', 'person-1', '--url', url, '--json', '--events', EVENTS]));
    assert.equal(decoded[0]?.['decoding'], 'decoded');
    assert.deepEqual(decoded[0]?.['data'], { firstName: 'Ada', lastName: 'Lovelace' }, 'upcast from v1 to v2');

    const table = await eventfold(['show', 'account-1', '--url', url, '--events', EVENTS]);
    const rows = tableRows(table.stdout);
    assert.deepEqual(rows[0], ['VERSION', 'POSITION', 'TIME', 'TYPE', 'SCHEMA', 'DATA']);
    assert.deepEqual(
      rows.slice(1).map((r) => [r[0], r[1], r[3], r[4], r[5]]),
      [
        ['1', '0:1', 'Deposited', 'v1', '{"amount":5}'],
        ['2', '0:2', 'Withdrawn', 'v1', '{"amount":2}'],
      ],
    );
    const lines = jsonLines(await eventfold(['show', 'account-1', '--url', url, '--json', '--from-version', '2']));
    assert.deepEqual(
      lines.map((l) => [l['version'], l['type'], l['position']]),
      [[2, 'Withdrawn', { partition: 0, offset: '2' }]],
    );
  });

  it('show of a stream with no events exits 1 and says so', async () => {
    const r = await eventfold(['show', 'account-404', '--url', url]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /stream "account-404" has no events/);
  });

  it('stats counts streams and events, per partition', async () => {
    const r = await eventfold(['stats', '--url', url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [stats] = jsonLines(r);
    assert.equal(stats?.['backend'], 'sqlite');
    assert.equal(stats?.['streams'], 3);
    assert.equal(stats?.['events'], 4);
    assert.deepEqual(stats?.['partitions'], [{ partition: 0, streams: 3, events: 4, head: '4' }]);
    const table = await eventfold(['stats', '--url', url]);
    assert.match(table.stdout, /3 streams, 4 events/);
  });
});

describe('eventfold CLI: usage errors exit 2, help exits 0', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await eventfold(['--help']);
    assert.equal(r.code, 0);
    for (const command of ['streams', 'show', 'stats']) assert.match(r.stdout, new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('npx eventfold --help runs the bin from the repository (package.json "bin")', async () => {
    const r = spawnSync('npx', ['--offline', 'eventfold', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: eventfold \[options\] \[command\]/m);
  });

  it('an unknown option, a bad --limit, a missing argument or no command exit 2 with the reason on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [['streams', '--url', url, '--bogus'], /unknown option '--bogus'/],
      [['streams', '--url', url, '--limit', 'ten'], /--limit <n>.*must be a positive integer/],
      [['show', '--url', url], /missing required argument 'stream'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [[], /Usage: eventfold/],
    ];
    for (const [args, message] of cases) {
      const r = await eventfold(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
  });

  it('no store, a malformed URL, an invalid stream name or an events module that does not load exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['streams'], /no store given: pass --url/],
      [['streams', '--url', 'mysql://x'], /unknown scheme "mysql:"/],
      [['streams', '--url', 'sqlite::memory:?cache=1'], /unknown parameter "cache"/],
      [['show', '', '--url', url], /stream/],
      [['show', 'account-1', '--url', url, '--events', './no-such-file.ts'], /cannot load event definitions from \.\/no-such-file\.ts/],
    ];
    for (const [args, message] of cases) {
      const r = await eventfold(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('a store that cannot be opened is a failure (exit 1), not a usage error', async () => {
    const r = await eventfold(['streams', '--url', `sqlite:${join(dir, 'no-such-dir', 'x.db')}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error:/);
  });
});
