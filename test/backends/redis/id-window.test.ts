// The Redis id index keeps a window of event ids per partition (idWindow): ids among the
// partition's last `idWindow` are refused as duplicates, older ones are dropped from Redis
// memory, and an exact retry with an expected version is still recognised at any age.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import { redis, RedisKeys } from '../../../src/backends/redis/index.ts';
import { createEventStore, DuplicateEventIdError, InvalidArgumentError } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { REDIS_URL, uniqueName } from '../../services/env.ts';

const prefixes: string[] = [];

after(async () => {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  for (const prefix of prefixes) {
    for await (const batch of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 1000 })) {
      if (batch.length > 0) await client.del(batch);
    }
  }
  await client.quit();
});

describe('redis: id window', () => {
  it('refuses recent duplicate ids, forgets older ones, recognises exact retries at any age', async () => {
    assert.throws(() => redis({ idWindow: 0 }), InvalidArgumentError);
    const prefix = uniqueName('idwin');
    prefixes.push(prefix);
    const driver = redis({ url: REDIS_URL, prefix, partitions: 1, idWindow: 5 });
    const store = createEventStore({ driver, events: [Deposited, Withdrawn] });
    const first = Deposited({ amount: 1 });
    await store.append('account-a', first, { expectedVersion: 0 });
    const recent = [];
    for (let i = 0; i < 6; i++) {
      const e = Deposited({ amount: i + 1 });
      recent.push(e);
      await store.append(`account-${i % 2 === 0 ? 'b' : 'c'}`, e);
    }
    await store.appendMany([
      { streamId: 'account-d', events: [Deposited({ amount: 9 })] },
      { streamId: 'account-e', events: [Withdrawn({ amount: 9 })] },
    ]);
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const ids = await client.hKeys(driver.keys.ids(0));
    await client.quit();
    const eventIds = ids.filter((id) => id.length <= 128);
    assert.equal(eventIds.length, 5, `the index holds the window (${eventIds.length} ids)`);
    assert.ok(!eventIds.includes(first.id), 'the oldest id is gone from Redis');

    await assert.rejects(store.append('account-z', recent.at(-1)!), DuplicateEventIdError, 'a recent id is refused');
    const retry = await store.append('account-a', first, { expectedVersion: 0 });
    assert.equal(retry.alreadyStored, true, 'an exact retry with an expected version is recognised whatever its age');
    assert.equal(await store.streamVersion('account-a'), 1);
    await store.close();
  });
});
