// A subscription reads each partition's next page while it handles the one before
// (core/partition-pages.ts): a seek must still win over a page read ahead from before it.
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { createEventStore } from '../../src/index.ts';
import { accountEvents, Deposited } from '../conformance/fixtures.ts';
import { recordReads } from '../support/recorded-reads.ts';

describe('subscription pages read ahead', () => {
  it('a seek in the middle of a page: processing resumes right after the position sought, not at the page read ahead', async () => {
    const store = createEventStore({ driver: sqlite({ database: new DatabaseSync(':memory:') }), events: accountEvents });
    for (let i = 0; i < 2; i++)
      await store.append(
        'account-0',
        Array.from({ length: 50 }, () => Deposited({ amount: 1 })),
      );
    const seen: number[] = [];
    const offsets = new Map<number, bigint>();
    let sought = false;
    const sub = store.subscribe({
      group: 'seek-mid-page',
      batchSize: 10,
      handler: async (e) => {
        seen.push(e.version);
        offsets.set(e.version, e.position.offset);
        if (e.version === 5 && !sought) {
          sought = true;
          // The next page (11..20) is being read ahead by now.
          await store.subscriptions.seek('seek-mid-page', [{ partition: 0, offset: offsets.get(2)! }]);
        }
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.deepEqual(seen, [1, 2, 3, 4, 5, ...Array.from({ length: 98 }, (_, i) => i + 3)]);
    await store.close();
  });

  it('a catch-up over many full pages delivers every event once, in order, reading each next page before handling the one before', async () => {
    const driver = sqlite({ database: new DatabaseSync(':memory:') });
    const store = createEventStore({ driver, events: accountEvents });
    for (let i = 0; i < 10; i++)
      await store.append(
        `account-${i % 3}`,
        Array.from({ length: 37 }, () => Deposited({ amount: 1 })),
      );
    const readsAfter = recordReads(driver);
    const seen: bigint[] = [];
    /** Full pages whose last event was handled after the read of the page that follows had started. */
    let readAheadInTime = 0;
    const sub = store.subscribe({
      group: 'pages',
      batchSize: 10,
      handler: (e) => {
        seen.push(e.position.offset);
        if (seen.length % 10 === 0 && readsAfter.includes(e.position.offset)) readAheadInTime++;
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.equal(seen.length, 370);
    assert.equal(readAheadInTime, 37, 'every full page: the next one was being read while it was handled');
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      'in log order',
    );
    assert.equal(new Set(seen).size, 370, 'each once');
    await store.close();
  });
});
