// The core's partition-ownership path (used by Kafka and Pulsar, which have no conditional
// append), run on a SQLite store whose appends are fenced by epoch leases instead of checked:
// the conformance suite, takeover on demand, and two OS processes racing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../src/index.ts';
import { runConformanceSuite } from '../conformance/suite.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { fencedSqlite } from '../support/fenced-sqlite.ts';
import { conflictsLine, raceTwoProcesses } from '../support/race.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-owner-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const events = [Deposited, Withdrawn] as const;

runConformanceSuite({
  name: 'partition owner (fenced sqlite)',
  driver: (storeName) => fencedSqlite(join(dir, `${storeName}.db`)),
});

describe('partition ownership', () => {
  it('two writers take the partition over from each other on demand; a stale expected version is a typed conflict', async () => {
    const path = join(dir, 'takeover.db');
    const a = createEventStore({ driver: fencedSqlite(path), events });
    const b = createEventStore({ driver: fencedSqlite(path), events });
    // Alternate writers: each append claims the partition from the other and catches up first.
    let version = 0;
    for (let i = 0; i < 10; i++) {
      const writer = i % 2 === 0 ? a : b;
      version = (await writer.append('account-1', Deposited({ amount: i + 1 }), { expectedVersion: version })).nextExpectedVersion;
    }
    assert.equal(version, 10);
    // A last saw version 9 (it wrote it); B wrote 10. A takes over, catches up, and refuses.
    await assert.rejects(a.append('account-1', Deposited({ amount: 99 }), { expectedVersion: 9 }), (error: unknown) => {
      assert.ok(error instanceof ExpectedVersionConflictError);
      assert.equal(error.actualVersion, 10);
      return true;
    });
    const read: number[] = [];
    for await (const e of a.readStream('account-1')) read.push(e.data.amount);
    assert.deepEqual(read, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await a.close();
    await b.close();
  });

  it("a caller behind the held lease's index gets its conflict without a new claim; one ahead of it makes the writer claim again first", async () => {
    const driver = fencedSqlite(join(dir, 'certain-conflict.db'));
    let claims = 0;
    const claim = driver.claimPartition.bind(driver);
    driver.claimPartition = (partition) => {
      claims++;
      return claim(partition);
    };
    const store = createEventStore({ driver, events });
    for (let v = 0; v < 3; v++) await store.append('account-c', Deposited({ amount: 1 }), { expectedVersion: v });
    assert.equal(claims, 1, 'one claim for three appends');
    const conflict = (expectedVersion: number | 'no_stream') =>
      assert.rejects(store.append('account-c', Deposited({ amount: 1 }), { expectedVersion }), ExpectedVersionConflictError);
    // Behind what this writer committed itself: no other writer can make version 1 or "no stream" current again.
    await conflict(1);
    await conflict('no_stream');
    assert.equal(claims, 1, 'a certain conflict costs no claim');
    // Ahead of the index: another writer may have appended since our claim, so only a fresh claim can say no.
    await conflict(7);
    assert.equal(claims, 2, 'an uncertain conflict is confirmed against a fresh claim');
    assert.equal((await store.append('account-c', Deposited({ amount: 1 }), { expectedVersion: 3 })).nextExpectedVersion, 4);
    await store.close();
  });

  it('appends from many concurrent loops all settle: none is left waiting by the group commit', { timeout: 60_000 }, async () => {
    // Each loop appends again as soon as its last append settles, from the settling microtask:
    // a drain that found nothing to do must not drop the queue those appends wait in.
    const driver = fencedSqlite(join(dir, 'loops.db'));
    // A broker's latency: appends and claims take a moment, in random order.
    const later = () => new Promise((r) => setTimeout(r, Math.random() * 3));
    const claim = driver.claimPartition.bind(driver);
    driver.claimPartition = async (partition) => {
      await later();
      const lease = await claim(partition);
      const append = lease.append.bind(lease);
      return Object.assign(lease, {
        append: async (requests: Parameters<typeof append>[0]) => {
          await later();
          return append(requests);
        },
      });
    };
    const store = createEventStore({ driver, events });
    const LOOPS = 8;
    const EACH = 60;
    let settled = 0;
    const loop = async (l: number) => {
      for (let i = 0; i < EACH; i++) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stuck = new Promise<'stuck'>((resolve) => {
          timer = setTimeout(() => resolve('stuck'), 15_000);
        });
        const outcome = await Promise.race([store.append(`account-${(l + i) % 3}`, Deposited({ amount: 1 })), stuck]);
        clearTimeout(timer);
        assert.notEqual(outcome, 'stuck', `append ${i} of loop ${l} settled within 15 s`);
        settled++;
      }
    };
    await Promise.all(Array.from({ length: LOOPS }, (_, l) => loop(l)));
    assert.equal(settled, LOOPS * EACH);
    await store.close();
  });

  it('a fenced lease cannot append: nothing of it becomes visible', async () => {
    const path = join(dir, 'fenced.db');
    const driver = fencedSqlite(path);
    await driver.open();
    const first = await driver.claimPartition(0);
    const second = await driver.claimPartition(0);
    const request = (id: string) => ({
      streamId: 'account-z',
      partition: 0,
      expectedVersion: 0,
      events: [
        {
          id,
          type: 'Deposited',
          schemaVersion: 1,
          codec: 'json',
          data: new TextEncoder().encode('{"amount":1}'),
          metadata: '{}',
          time: Date.now(),
        },
      ],
    });
    await assert.rejects(first.append([request('zombie')]), PartitionFencedError);
    await second.append([request('owner')]);
    const stored = await driver.readPartition(0, { after: undefined, limit: 10, streamId: 'account-z' });
    assert.deepEqual(
      stored.map((e) => e.id),
      ['owner'],
    );
    await driver.close();
  });

  it('two OS processes racing on one stream through ownership: every version won exactly once', async (t) => {
    const path = join(dir, 'race.db');
    const setup = createEventStore({ driver: fencedSqlite(path), events });
    await setup.streamVersion('account-shared');
    await setup.close();
    const rounds = 40;
    const race = await raceTwoProcesses(['fenced-sqlite', path], rounds, 90_000);
    t.diagnostic(conflictsLine(race));
  });
});
