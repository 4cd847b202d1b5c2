// Embedded-store behaviour beyond the conformance suite: several OS processes on one file,
// corrupted rows, WAL mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { createEventStore, EventDecodeError } from '../../../src/index.ts';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { conflictsLine, raceTwoProcesses } from '../../support/race.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite: several processes on one file', () => {
  it('two OS processes racing on one stream: every version won exactly once, no gaps, no duplicates', async (t) => {
    const path = join(dir, 'race.db');
    const setup = createEventStore({ driver: sqlite({ path }), events: [Deposited, Withdrawn] });
    await setup.streamVersion('account-shared'); // creates the schema before the workers start
    await setup.close();
    const rounds = 100;
    const race = await raceTwoProcesses(['sqlite', path], rounds);
    t.diagnostic(conflictsLine(race));

    const store = createEventStore({ driver: sqlite({ path }), events: [Deposited, Withdrawn] });
    const versions: number[] = [];
    const byWorker = new Map<string, number>();
    for await (const e of store.readStream('account-shared')) {
      versions.push(e.version);
      byWorker.set(e.metadata.worker!, (byWorker.get(e.metadata.worker!) ?? 0) + 1);
    }
    await store.close();
    assert.deepEqual(
      versions,
      Array.from({ length: 2 * rounds }, (_, i) => i + 1),
    );
    assert.deepEqual([...byWorker.entries()].sort(), [
      ['a', rounds],
      ['b', rounds],
    ]);
  });

  it('opens a file in WAL mode', async () => {
    const path = join(dir, 'wal.db');
    const store = createEventStore({ driver: sqlite({ path }), events: [Deposited] });
    await store.append('account-w', Deposited({ amount: 1 }));
    await store.close();
    const db = new DatabaseSync(path);
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    db.close();
  });
});

describe('sqlite: corrupted rows', () => {
  it('a row whose payload is not valid JSON gives an EventDecodeError naming stream, version and type, in reads and subscriptions', async () => {
    const db = new DatabaseSync(':memory:');
    const store = createEventStore({ driver: sqlite({ database: db }), events: [Deposited, Withdrawn] });
    await store.append('account-k', [Deposited({ amount: 1 }), Withdrawn({ amount: 1 })]);
    db.prepare("UPDATE ef_events SET data = ? WHERE stream_id = 'account-k' AND version = 2").run(new TextEncoder().encode('{"amount":'));
    const check = (error: unknown): boolean => {
      assert.ok(error instanceof EventDecodeError);
      assert.equal(error.streamId, 'account-k');
      assert.equal(error.version, 2);
      assert.equal(error.eventType, 'Withdrawn');
      assert.equal(error.code, 'DECODE_FAILED');
      return true;
    };
    await assert.rejects(async () => {
      for await (const _ of store.readStream('account-k'));
    }, check);
    const seen: number[] = [];
    const subscription = store.subscribe({ group: 'reader', handler: (e) => void seen.push(e.version) });
    await assert.rejects(subscription.done, check);
    assert.deepEqual(seen, [1], 'the event before the corrupted one was handled');
    assert.deepEqual(
      await store.subscriptions.position('reader'),
      [{ partition: 0, offset: 1n }],
      'the position stops before the bad event',
    );
    await store.close();
    db.close();
  });
});
