// readAll (and readSince) read a full page's next page while the caller takes this one
// (event-store.ts #scanPartition): every event once, in order, and a caller that stops early
// leaves nothing behind (no unhandled rejection, the store closes).
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { createEventStore } from '../../src/index.ts';
import { accountEvents, Deposited } from '../conformance/fixtures.ts';
import { recordReads } from '../support/recorded-reads.ts';

async function seeded() {
  const driver = sqlite({ database: new DatabaseSync(':memory:') });
  const store = createEventStore({ driver, events: accountEvents });
  for (let i = 0; i < 5; i++)
    await store.append(
      `account-${i}`,
      Array.from({ length: 21 }, () => Deposited({ amount: 1 })),
    );
  const readsAfter = recordReads(driver);
  return { store, readsAfter };
}

describe('readAll pages read ahead', () => {
  it('every event once, in order; each full page next page is being read while the caller takes it', async () => {
    const { store, readsAfter } = await seeded();
    const offsets: bigint[] = [];
    let inTime = 0;
    for await (const e of store.readAll({ batchSize: 10 })) {
      offsets.push(e.position.offset);
      if (offsets.length % 10 === 0 && readsAfter.includes(e.position.offset)) inTime++;
    }
    assert.equal(offsets.length, 105);
    assert.equal(new Set(offsets).size, 105);
    assert.deepEqual(
      offsets,
      [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    assert.equal(inTime, 10, 'the next page was read ahead of each of the 10 full pages');
    await store.close();
  });

  it('a caller that stops early, while the page read ahead fails: no unhandled rejection, and the store closes', async () => {
    const driver = sqlite({ database: new DatabaseSync(':memory:') });
    const store = createEventStore({ driver, events: accountEvents });
    await store.append(
      'account-0',
      Array.from({ length: 30 }, () => Deposited({ amount: 1 })),
    );
    const read = driver.readPartition.bind(driver);
    driver.readPartition = async (partition, range) => {
      if (range.after !== undefined) throw new Error('the broker went away');
      return read(partition, range);
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let n = 0;
      for await (const _ of store.readAll({ batchSize: 10 })) if (++n === 10) break;
      await store.close();
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
